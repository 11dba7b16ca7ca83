"""The outermost layer: request ids, the access log and HTTP metrics, as plain ASGI (Starlette's
BaseHTTPMiddleware costs a task and a copy per request, and streams badly)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge, UnsupportedMediaType, error_response
from service.logs import REQUEST_ID_SCOPE_KEY, reset_request_id, set_request_id
from service.metrics import ServiceMetrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

access_log = logging.getLogger("service.access")


class RequestContextMiddleware:
    """Gives every request an id (the client's X-Request-ID when it is sane), returns it in the
    X-Request-ID header, logs one line per request and counts it by route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    "%s %s %d",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": client[0] if client else None,
                        "route": route,
                    },
                )
            reset_request_id(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.match(text) else None
    return None


_CLOSE = {"Connection": "close"}
"""Sent with a 413: uvicorn then closes the connection instead of reading (and discarding) the
rest of a body the client is still sending."""


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: at once when Content-Length says so (nothing is
    read), else as soon as the bytes read pass the limit (nothing more is buffered), and closes
    the connection so the client cannot keep sending."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(413, self._message(), PayloadTooLarge.code, headers=_CLOSE)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self._message(), headers=_CLOSE)
            return message

        await self.app(scope, receive_within_limit, send)

    def _message(self) -> str:
        return (
            f"the request body is larger than the {self.max_bytes:,} bytes this service "
            "accepts (PERCEPTRON_MAX_BODY_BYTES)"
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ContentEncodingMiddleware:
    """Refuses request bodies sent with a Content-Encoding (gzip, deflate, br...) with 415:
    none is decoded here, and reading compressed bytes as the plain body would give a
    misleading error (or a decompression bomb, were it decoded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            encoding = _header(scope, b"content-encoding")
            if encoding is not None and encoding.strip().lower() not in ("", "identity"):
                response = error_response(
                    415,
                    f"Content-Encoding {encoding.strip()!r} is not supported: send the body "
                    "uncompressed",
                    UnsupportedMediaType.code,
                    headers=_CLOSE,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, whose refused preflights answer in this service's error format (a
    JSON body with a code) instead of plain text, so that one client-side handler reads every
    refusal."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.startswith("access-control-") or name == "vary"
        }
        return error_response(
            400,
            f"cross-origin request refused: its {refused} is not allowed here "
            "(PERCEPTRON_CORS_ORIGINS lists the web sites that may call this service)",
            "cors_refused",
            headers=headers,
        )
