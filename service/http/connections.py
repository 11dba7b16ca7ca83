"""Connection limits uvicorn lacks, as a subclass of its httptools protocol: a cap on headers'
size and count, a deadline for a request's headers and another for its body, idle connections
closed, a cap on open connections, and a gatekeeper that refuses a request from its method, path
and client before the app sees it. Errors found here are answered in the service's error shape,
never uvicorn's plain text.

uvicorn 0.54 arms its keep-alive timer only after a response, so a connection that never sends a
request, or sends a header byte a second, is otherwise kept for ever; httptools buffers a header
of any size; `limit_concurrency` answers 503 but still accepts and keeps every socket.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import ServiceError
from service.settings import Settings

EVICT_SHARE = 10
"""Past the connection cap, the oldest idle 1/EVICT_SHARE of the cap is closed in one go."""


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    max_header_bytes: int
    max_header_count: int
    header_timeout_s: float
    body_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
        )


Gatekeeper = Callable[[str, str, str], ServiceError | None]
"""(method, path, client host) -> the error to answer before the app runs, or None to go on.

For refusals that come in floods (a burst of event streams from one client): answered here, a
refusal costs a tenth of what the app's middleware, routing and handlers would."""


class _HeadersRefused(Exception):
    pass


class _RequestRefused(Exception):
    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.message)
        self.error = error


def raw_error(
    status: int, reason: str, code: str, message: str, headers: dict[str, str] | None = None
) -> bytes:
    """A complete HTTP/1.1 error response in the service's error shape, closing the connection
    (for errors found before any request reaches the app)."""
    body = json.dumps({"error": message, "code": code}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `limits` (set on the subclass `guarded_protocol`
    makes)."""

    limits: ConnectionLimits
    gatekeeper: Gatekeeper | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._idle_since = time.monotonic()
        self._deadline: asyncio.TimerHandle | None = None

    # -- the connection cap ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            transport.write(
                raw_error(
                    503,
                    "Service Unavailable",
                    "overloaded",
                    f"{self.limits.max_connections} connections are open, none idle; retry "
                    "shortly (PERCEPTRON_MAX_CONNECTIONS)",
                )
            )
            transport.close()
            return
        # Also the idle timeout of a connection that never sends anything.
        self._arm(self.limits.header_timeout_s, self._headers_too_slow)

    def _evict_idle(self) -> bool:
        """Closes the connections that have waited longest for a request's headers, a tenth of
        the cap at once (a flood then costs one scan per many accepts, not one per accept), so
        idle sockets cannot lock out real clients; False when every connection is busy."""
        idle = [
            other
            for other in self.connections
            if other is not self
            and isinstance(other, GuardedHttpToolsProtocol)
            and other.is_idle()
            and not other.has_unread_data()
        ]
        if not idle:
            return False
        idle.sort(key=lambda other: other._idle_since)
        for oldest in idle[: max(1, self.limits.max_connections // EVICT_SHARE)]:
            oldest.transport.close()
        return True

    def is_idle(self) -> bool:
        """Waiting for a request's headers, with no response in progress."""
        return (
            self._awaiting_headers
            and (self.cycle is None or self.cycle.response_complete)
            and not self.pipeline
            and not self.transport.is_closing()
        )

    def has_unread_data(self) -> bool:
        """Whether bytes wait in the kernel for this connection: a client whose request the
        loop has not read yet (during a flood of accepts) is not idle."""
        sock = self.transport.get_extra_info("socket")
        try:
            pending = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, AttributeError, ValueError):
            return False
        return int.from_bytes(pending, sys.byteorder) > 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- header size, count and deadline -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._awaiting_headers and self._deadline is None:
            self._arm(self.limits.header_timeout_s, self._headers_too_slow)
        if self._awaiting_headers:
            self._header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersRefused):
                self._refuse_headers(str(exc.__context__))
            elif isinstance(exc.__context__, _RequestRefused):
                error = exc.__context__.error
                self._refuse(
                    error.status,
                    HTTPStatus(error.status).phrase,
                    error.code,
                    error.message,
                    error.headers,
                )
            else:
                self._refuse(400, "Bad Request", "bad_request", f"malformed HTTP request: {exc}")
            return
        if self._awaiting_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse_headers(
                f"the request line and headers exceed {self.limits.max_header_bytes:,} bytes "
                "(PERCEPTRON_MAX_HEADER_BYTES)"
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            raise _HeadersRefused(
                f"more than {self.limits.max_header_count} headers (PERCEPTRON_MAX_HEADER_COUNT)"
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._disarm()
        if self.gatekeeper is not None:
            # Raised through the parser, which then stops: no cycle, no task, no app.
            error = self.gatekeeper(
                self.parser.get_method().decode("ascii", "replace"),
                httptools.parse_url(self.url).path.decode("ascii", "replace"),
                self.client[0] if self.client else "unknown",
            )
            if error is not None:
                raise _RequestRefused(error)
        self._arm(self.limits.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = True
        self._idle_since = time.monotonic()
        super().on_message_complete()

    # -- timers --------------------------------------------------------------------------------
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._awaiting_headers:
            return
        if self._header_bytes == 0:
            self.transport.close()  # idle: nothing to answer
            return
        self._refuse(
            408,
            "Request Timeout",
            "request_timeout",
            f"the request's headers did not arrive within {self.limits.header_timeout_s:g} s "
            "(PERCEPTRON_HEADER_TIMEOUT_S)",
        )

    def _body_too_slow(self) -> None:
        # The app is reading the body: closing makes its receive() report a disconnect, and it
        # stops there (a response written here would interleave with the app's).
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.info(
                "closing a connection whose body did not arrive within %g s",
                self.limits.body_timeout_s,
            )
            self.transport.close()

    def _refuse_headers(self, message: str) -> None:
        self._refuse(431, "Request Header Fields Too Large", "headers_too_large", message)

    def _refuse(
        self,
        status: int,
        reason: str,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(raw_error(status, reason, code, message, headers))
            self.transport.close()


def guarded_protocol(
    limits: ConnectionLimits, gatekeeper: Gatekeeper | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to pass to uvicorn as `http=`, bound to `limits` and `gatekeeper`."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"limits": limits, "gatekeeper": staticmethod(gatekeeper) if gatekeeper else None},
    )
