"""The prediction service: loads the SavedModels in `models/` and serves them over HTTP."""
