"""The ways an upload can fail to become a digit; `status` is the HTTP status the API answers."""

from __future__ import annotations


class ImageError(Exception):
    """The upload cannot be used; `status` is the HTTP status the API answers with."""

    status = 415


class UnreadableImage(ImageError):
    status = 415


class ImageTooLarge(ImageError):
    status = 413


class NoDigitFound(ImageError):
    status = 422
