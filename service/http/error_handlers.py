"""The handlers that render every error the same way:
`{"error": "<what went wrong and what to do>", "code": "<machine-readable>", "request_id": ...}`
(plus `details` for field-level validation errors), and the routes' OpenAPI entries for them.
TensorFlow Serving and Open Inference Protocol clients read the `error` key of the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from service.errors import NoContent, ServiceError, invalid_input
from service.logs import REQUEST_ID_SCOPE_KEY, current_request_id
from service.schemas.errors import ErrorBody

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499


def error_response(
    status: int,
    message: str,
    code: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    request_id = request_id or current_request_id()
    body = ErrorBody(error=message, code=code, request_id=request_id, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def install_error_handlers(app: FastAPI) -> None:
    """Routes every error, ours or the framework's, through the one JSON shape."""

    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        if exc.internal:
            log.warning(
                "%s %s answered %d %s: %s",
                request.method,
                request.url.path,
                exc.status,
                exc.code,
                exc.internal,
                extra={"request_id": request.scope.get(REQUEST_ID_SCOPE_KEY)},
            )
        return error_response(
            exc.status, exc.message, exc.code, details=exc.details, headers=exc.headers
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        error = invalid_input(exc.errors())
        return error_response(422, error.message, error.code, details=error.details)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        code = _HTTP_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, message, code, headers=headers)

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Runs outermost, after the request-context middleware has finished: the id comes
        # from the scope, so the client gets the id that the logged traceback carries.
        request_id = request.scope.get(REQUEST_ID_SCOPE_KEY)
        log.exception(
            "unhandled error on %s %s",
            request.method,
            request.url.path,
            extra={"request_id": request_id},
        )
        return error_response(
            500,
            "internal error; the request id identifies it in the logs",
            "internal_error",
            request_id=request_id,
            headers={"X-Request-ID": request_id} if request_id else None,
        )

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up while its body was being read: nobody is left to answer and
        # nothing went wrong here. 499 (nginx's "client closed request") marks it in the logs.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    async def no_content(request: Request, exc: Exception) -> Response:
        return Response(status_code=204)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(NoContent, no_content)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


_RESPONSE_DESCRIPTIONS = {
    400: "Malformed request (unparseable JSON, broken multipart), or a Host header the "
    "service does not answer to",
    401: "Admin token missing",
    403: "Admin token wrong, not a loopback client when no token is configured, or an admin "
    "call or feedback from another site's page (Origin, Sec-Fetch-Site)",
    404: "Unknown model, version or job",
    409: "The change conflicts with the current state",
    413: "Body, image or image structure too large, or too many JSON values",
    415: "Unsupported media type or undecodable image; admin bodies must be JSON",
    422: "Invalid values",
    429: "Job queue full, too many event streams open, or too many requests from one address",
    503: "Model not ready, or inference queue full",
    507: "The feedback store is at its quota",
}


def error_responses(*statuses: int, streaming: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer with. FastAPI
    documents a `model` under the route's own media type, so a `streaming` (event-stream)
    route names the JSON schema itself (the other routes' entries put it in the components)."""
    if streaming:
        schema = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
        return {
            status: {
                "description": _RESPONSE_DESCRIPTIONS[status],
                "content": {"application/json": {"schema": schema}},
            }
            for status in statuses
        }
    return {
        status: {"model": ErrorBody, "description": _RESPONSE_DESCRIPTIONS[status]}
        for status in statuses
    }
