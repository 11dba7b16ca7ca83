"""Labelled examples sent by the people who use the service (`POST /digit/feedback`), reviewed
by an admin and used to fine-tune the digit model."""
