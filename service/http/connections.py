"""Connection limits uvicorn lacks, as a subclass of its httptools protocol: a cap on headers'
size and count, one Host header per request, a deadline for a request's headers and another for
its body, a deadline for a response's progress, idle connections closed, a cap on open
connections in all and per client address, and a gatekeeper that refuses a request from its
method, path and client before the app sees it. Errors found here are answered in the service's
error shape, never uvicorn's plain text.

uvicorn 0.54 arms its keep-alive timer only after a response, so a connection that never sends a
request, or sends a header byte a second, is otherwise kept for ever; httptools buffers a header
of any size; `limit_concurrency` answers 503 but still accepts and keeps every socket. A client
that stops reading leaves its answer waiting in `drain()` with no timer (its connection never
idle, so never evicted), and when such a pipelined connection closes, uvicorn marks only the
newest request as disconnected: the one running writes on to the closed transport and fails
with an unhandled error.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import socket
import struct
import sys
import termios
import time
from collections import Counter
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
    write_timeout_s: float
    max_connections_per_client: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            write_timeout_s=settings.write_timeout_s,
            max_connections_per_client=settings.max_connections_per_client,
        )


Gatekeeper = Callable[[str, str, str], ServiceError | None]
"""(method, path, client host) -> the error to answer before the app runs, or None to go on.

For refusals that come in floods (a burst of event streams from one client): answered here, a
refusal costs a tenth of what the app's middleware, routing and handlers would."""


class _HeadersRefused(Exception):
    pass


class _DuplicateHost(Exception):
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
    """uvicorn's httptools protocol with `limits` (set, with the per-address counts, by
    `bind`)."""

    limits: ConnectionLimits
    gatekeeper: Gatekeeper | None = None
    connections_by_address: Counter[str]
    """Open connections per client address, for this class's server (one per process)."""

    @classmethod
    def bind(cls, limits: ConnectionLimits, gatekeeper: Gatekeeper | None) -> None:
        cls.limits = limits
        cls.gatekeeper = staticmethod(gatekeeper) if gatekeeper else None
        cls.connections_by_address = Counter()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._host_headers = 0
        self._idle_since = time.monotonic()
        self._deadline: asyncio.TimerHandle | None = None
        self._address: str | None = None
        self._running: Any = None
        """The request cycle whose app task runs (uvicorn's `cycle` is the newest parsed)."""
        self._write_watch: asyncio.TimerHandle | None = None
        self._unsent = 0
        self._drained = False

    # -- the connection caps -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client:
            self._address = self.client[0]
            self.connections_by_address[self._address] += 1
            if self.connections_by_address[self._address] > self.limits.max_connections_per_client:
                self._refuse(
                    429,
                    "Too Many Requests",
                    "too_many_connections",
                    f"{self.limits.max_connections_per_client} connections are already open "
                    f"from {self._address}; reuse them or close some "
                    "(PERCEPTRON_MAX_CONNECTIONS_PER_CLIENT)",
                )
                return
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
            self._close()
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
        if self._write_watch is not None:
            self._write_watch.cancel()
            self._write_watch = None
        if self._address is not None:
            self.connections_by_address[self._address] -= 1
            if self.connections_by_address[self._address] <= 0:
                del self.connections_by_address[self._address]
            self._address = None
        # Every request of the connection is over, not only the newest parsed: the running
        # one must stop writing, and pipelined ones never start.
        for cycle in (self._running, *(queued for queued, _ in self.pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.pipeline.clear()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    # -- the write-progress deadline -----------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()

    def resume_writing(self) -> None:
        self._drained = True
        super().resume_writing()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.get_write_buffer_size():
            self._watch_writes()

    def _watch_writes(self) -> None:
        """Checks every write_timeout_s that output waiting for the client shrinks; aborts
        the connection when it has not (a client that stopped reading)."""
        if self._write_watch is None and self.transport is not None:
            self._unsent = self.transport.get_write_buffer_size()
            self._drained = False
            self._write_watch = self.loop.call_later(
                self.limits.write_timeout_s, self._check_write_progress
            )

    def _check_write_progress(self) -> None:
        self._write_watch = None
        unsent = self.transport.get_write_buffer_size()
        if unsent == 0 and not self.flow.write_paused:
            return  # all sent: nothing to watch until the buffer fills again
        if self._drained or unsent < self._unsent:
            self._watch_writes()
            return
        self.logger.info(
            "closing a connection from %s whose client read nothing for %g s (%d bytes unsent)",
            self._address or "an unknown address",
            self.limits.write_timeout_s,
            unsent,
        )
        # A reset, not a close: a close would queue the end of the stream behind the unsent
        # bytes, and the kernel would keep them (and the client its connection) for minutes.
        # The running request sees a client disconnect and stops.
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

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
            elif isinstance(exc.__context__, _DuplicateHost):
                self._refuse(
                    400,
                    "Bad Request",
                    "bad_request",
                    "the request carries more than one Host header; send exactly one",
                )
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
        self._host_headers = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            raise _HeadersRefused(
                f"more than {self.limits.max_header_count} headers (PERCEPTRON_MAX_HEADER_COUNT)"
            )
        if len(name) == 4 and name.lower() == b"host":
            self._host_headers += 1
            if self._host_headers > 1:
                # RFC 9112, section 3.2: a server must answer 400 to more than one Host; the
                # Host check and the application would each read a different one.
                raise _DuplicateHost
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
            self._close()  # idle: nothing to answer
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
            self._close()

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
            self._close()

    def _close(self) -> None:
        """Closes once what is buffered has been sent, within the write-progress deadline."""
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self._watch_writes()

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self._close()


def guarded_protocol(
    limits: ConnectionLimits, gatekeeper: Gatekeeper | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to pass to uvicorn as `http=`, bound to `limits` and `gatekeeper`
    (a class of its own, so two servers in one process count their connections apart)."""
    protocol: type[GuardedHttpToolsProtocol] = type(
        "GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {}
    )
    protocol.bind(limits, gatekeeper)
    return protocol
