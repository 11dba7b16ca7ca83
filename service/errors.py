"""One error type with a status code and a machine-readable code, and its kinds. Every layer
raises these (never HTTP exceptions); `service.http.error_handlers` renders each as
`{"error": "<what went wrong and what to do>", "code": "<machine-readable>", "request_id": ...}`.
Nothing here imports a framework, so any layer, the picture-to-tensor package included, can
raise them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ServiceError(Exception):
    """Base of every error the service reports to a client. `message` and `details` are sent;
    `internal` (exception text, file paths: what only the operator should see) is logged with
    the request id and never sent."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        internal: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        self.details = details
        self.internal = internal


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class TooManyRequests(ServiceError):
    status, code = 429, "too_many_requests"


class InsufficientStorage(ServiceError):
    """A store is at its quota: nothing more is kept until some is deleted."""

    status, code = 507, "storage_full"


class ModelUnavailable(ServiceError):
    status, code = 503, "model_unavailable"


class Overloaded(ServiceError):
    status, code = 503, "overloaded"


class NoContent(Exception):
    """Answered 204 with no body: raised where a route cannot return a response itself (the
    dependency of a streaming route that finds nothing left to stream)."""


def invalid_input(errors: Sequence[Any], prefix: str = "") -> InvalidInput:
    """An InvalidInput listing pydantic-style errors as `field: message` (and in `details`)."""
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": prefix + (".".join(location) or "body"), "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return InvalidInput(f"invalid request: {summary}{more}", details=details)
