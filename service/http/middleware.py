"""The outermost layer: request ids, the access log and HTTP metrics, as plain ASGI (Starlette's
BaseHTTPMiddleware costs a task and a copy per request, and streams badly)."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge, UnsupportedMediaType
from service.http.error_handlers import error_response
from service.http.hosts import HostCheck
from service.logs import REQUEST_ID_SCOPE_KEY, reset_request_id, set_request_id
from service.metrics import ServiceMetrics
from service.settings import Settings

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

access_log = logging.getLogger("service.access")
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
"""Asked every few seconds by orchestrators and load balancers: a successful answer is logged
at DEBUG, so the log keeps the requests people send (a failed one is logged as any other)."""
MAX_CACHED_SERIES = 1024


class RequestContextMiddleware:
    """Gives every request an id (the client's X-Request-ID when it is sane), returns it in the
    X-Request-ID header, logs one line per request and counts it by route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of these labels. Kept: `labels()` takes a
        lock and builds the key on every call. Bounded, since a client chooses the method."""
        key = (method, route, status)
        series = self._children.get(key)
        if series is None:
            series = (
                self.metrics.http_requests.labels(method, route, str(status)),
                self.metrics.http_latency.labels(method, route),
            )
            if len(self._children) < MAX_CACHED_SERIES:
                self._children[key] = series
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()  # uuid4's cost / 3
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
            requests, latency = self._series(method, route, status)
            requests.inc()
            latency.observe(elapsed)
            path = scope["path"]
            level = logging.DEBUG if path in PROBE_PATHS and status < 400 else logging.INFO
            if access_log.isEnabledFor(level):
                client = scope.get("client")
                access_log.log(
                    level,
                    "%s %s %d",
                    method,
                    path,
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": client[0][:MAX_LOGGED_CLIENT_CHARS] if client else None,
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


MAX_LOGGED_CLIENT_CHARS = 64
"""The client is an IP address (service/http/client_address.py); whatever else a server may report
is cut to this, so no request can write more than that into the log's client field."""

_CLOSE = {"Connection": "close"}
"""Sent with a 413 or 415: uvicorn then closes the connection instead of reading (and
discarding) the rest of a body the client is still sending."""


class RequestGuardMiddleware:
    """Refuses, before any route runs and in one pass over the headers:

    * a Host the service does not answer to (400, see `service.http.hosts`);
    * a body sent with a Content-Encoding (gzip, deflate, br...): 415. None is decoded here,
      and reading compressed bytes as the plain body would give a misleading error (or a
      decompression bomb, were it decoded);
    * a body over `max_bytes`: 413, at once when Content-Length says so (nothing is read),
      else as soon as the bytes read pass the limit (nothing more is buffered).

    One layer instead of three: every ASGI layer costs on each resumption of each request.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = HostCheck(settings)
        self.max_bytes = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = encoding = length = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"content-length":
                length = value
            elif name == b"content-encoding":
                encoding = value
        declared = _content_length(length)
        refusal = (
            self.hosts.refusal(host, scope["path"])
            or _encoding_refusal(encoding)
            or self._declared_size_refusal(declared)
        )
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if declared is not None:
            # The server reads exactly Content-Length bytes (HTTP/1.1 framing), within the
            # limit just checked: counting them again would cost on every chunk for nothing.
            await self.app(scope, receive, send)
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

    def _declared_size_refusal(self, declared: int | None) -> Response | None:
        if declared is None or declared <= self.max_bytes:
            return None
        return error_response(413, self._message(), PayloadTooLarge.code, headers=_CLOSE)

    def _message(self) -> str:
        return (
            f"the request body is larger than the {self.max_bytes:,} bytes this service "
            "accepts (PERCEPTRON_MAX_BODY_BYTES)"
        )


def _content_length(header: bytes | None) -> int | None:
    """The declared body length; None when there is none, or none that parses (the server
    refuses those itself, and the bytes read are then counted)."""
    if header is None:
        return None
    try:
        return int(header)
    except ValueError:
        return None


def _encoding_refusal(encoding: bytes | None) -> Response | None:
    if encoding is None:
        return None
    text = encoding.decode("latin-1").strip()
    if text.lower() in ("", "identity"):
        return None
    return error_response(
        415,
        f"Content-Encoding {text!r} is not supported: send the body uncompressed",
        UnsupportedMediaType.code,
        headers=_CLOSE,
    )


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
