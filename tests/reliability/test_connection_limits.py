"""Connection limits on a live server (service/http/connections.py): oversized or too many headers
get 431, headers that trickle in get 408, silent and kept-alive connections are closed, a body
shorter than its Content-Length is cut off, a client that stops reading its answers is
disconnected, past the connection cap the longest-idle connection makes room, one address
cannot take every connection, a second Host header gets 400, and protocol errors come in the
service's error shape. Limits are set small so every deadline passes within seconds."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.conftest import LiveServer, serve

LIMITS: dict[str, Any] = {
    "max_connections": 8,
    "max_header_bytes": 4096,
    "max_header_count": 20,
    "header_timeout_s": 1.0,
    "body_timeout_s": 1.0,
    "keep_alive_timeout_s": 1.0,
    "write_timeout_s": 5.0,  # longer than it takes to see that a client stopped reading
    "max_connections_per_client": 4,
}
CLOSE_WITHIN_S = 5.0
"""How long a test waits for the server to close a connection whose 1 s deadline has passed."""


@pytest.fixture(scope="module")
def live(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("connection-limits")
    shutil.copytree(tiny_models, root / "models")
    with serve(root / "models", root / "var", **LIMITS) as server:
        yield server


def connect(server: LiveServer, source: str = "127.0.0.1") -> socket.socket:
    """A connection from the loopback address `source` (Linux routes all of 127/8 to
    loopback: distinct addresses stand for distinct clients)."""
    host, port = server.host_port.split(":")
    return socket.create_connection(
        (host, int(port)), timeout=CLOSE_WITHIN_S + 5, source_address=(source, 0)
    )


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of the socket (1: established; anything else: the peer closed
    or reset it), read without consuming what the server sent."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


def wait_for_server_close(sock: socket.socket, within_s: float) -> float | None:
    """Seconds until the server closed a connection we do not read; None if it did not."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if tcp_state(sock) != 1:
            return time.monotonic() - started
        time.sleep(0.05)  # polling the kernel's state: there is nothing to wait on
    return None


def stalled_reader(server: LiveServer, source: str) -> socket.socket:
    """A connection that pipelines requests for the largest answer and reads none of them,
    with a receive buffer too small to take even one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((source, 0))
    host, port = server.host_port.split(":")
    sock.connect((host, int(port)))
    sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 100)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


def error_of(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_header_block_over_the_limit_gets_431_and_is_not_read_further(
    live: LiveServer,
) -> None:
    with connect(live) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8192)
        response, _ = read_until_closed(sock)
    status, body = error_of(response)
    assert status == 431 and body["code"] == "headers_too_large"
    assert "4,096 bytes" in body["error"] and "PERCEPTRON_MAX_HEADER_BYTES" in body["error"]


def test_too_many_headers_get_431(live: LiveServer) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(30))
    with connect(live) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
        response, _ = read_until_closed(sock)
    status, body = error_of(response)
    assert status == 431 and "more than 20 headers" in body["error"]


def test_a_silent_connection_is_closed_after_the_header_deadline(live: LiveServer) -> None:
    with connect(live) as sock:
        response, waited = read_until_closed(sock)
    assert response == b"" and waited < CLOSE_WITHIN_S


def test_headers_sent_a_byte_at_a_time_get_408(live: LiveServer) -> None:
    """Slowloris: a byte every 0.2 s keeps a connection busy without ever finishing."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    started = time.monotonic()
    with connect(live) as sock:
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)  # the attack's pacing, not synchronisation
                if time.monotonic() - started > CLOSE_WITHIN_S:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        response, _ = read_until_closed(sock)
    assert time.monotonic() - started < CLOSE_WITHIN_S + 1
    status, body = error_of(response)
    assert status == 408 and body["code"] == "request_timeout"


def test_a_body_shorter_than_its_length_is_cut_off(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(
            b"POST /mpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"cylinders": 4'
        )
        _, waited = read_until_closed(sock)
    assert waited < CLOSE_WITHIN_S


def test_a_kept_alive_connection_is_closed_when_idle(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response, waited = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200") and waited < CLOSE_WITHIN_S


def test_malformed_http_gets_400_in_the_error_shape(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")
        response, _ = read_until_closed(sock)
    status, body = error_of(response)
    assert status == 400 and body["code"] == "bad_request"


def test_idle_connections_past_the_cap_make_room_for_real_clients(live: LiveServer) -> None:
    # Idle clients on several addresses, each within the per-address cap.
    per_address = LIMITS["max_connections_per_client"]
    idle = [
        connect(live, f"127.0.1.{index // per_address + 1}")
        for index in range(3 * LIMITS["max_connections"])
    ]
    try:
        started = time.monotonic()
        response = httpx.get(f"{live.url}/healthz", timeout=5)
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0
        # The oldest idle sockets were closed to admit the newer ones.
        idle[0].settimeout(CLOSE_WITHIN_S)
        assert idle[0].recv(1) == b""
    finally:
        for sock in idle:
            sock.close()


def test_a_client_that_stops_reading_is_disconnected_after_the_write_deadline(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="uvicorn.error"),
        stalled_reader(live, "127.0.2.1") as sock,
    ):
        # The kernel takes a few megabytes of answers first; a loaded machine makes them slowly.
        closed_after = wait_for_server_close(sock, LIMITS["write_timeout_s"] + 30)
        assert closed_after is not None, "the server kept a client that reads nothing"
        # Meanwhile another client is answered at once.
        assert httpx.get(f"{live.url}/healthz", timeout=5).status_code == 200
    time.sleep(0.5)  # for the aborted request to finish on the server's loop
    assert any("read nothing" in record.getMessage() for record in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def answers_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for record in caplog.records if record.name == "service.access")


def wait_until_stuck(caplog: pytest.LogCaptureFixture, limit_s: float = 30.0) -> None:
    """Until the server has stopped answering (its output waits on clients that do not read):
    no new access-log line for two seconds (the kernel takes a few megabytes first)."""
    deadline = time.monotonic() + limit_s
    seen, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = answers_logged(caplog)
        if now != seen:
            seen, still_since = now, time.monotonic()
        elif time.monotonic() - still_since > 2.0:
            return
        time.sleep(0.05)  # polling the log: the server offers nothing to wait on
    raise AssertionError("the server kept answering clients that read nothing")


def test_pipelined_connections_closed_mid_answer_are_disconnects_not_errors(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The request being answered stops quietly, whether the client half-closes first or
    just closes; uvicorn alone would write on to the closed transport and log an unhandled
    RuntimeError (and the service a 500)."""
    with caplog.at_level(logging.INFO):
        half_closing = stalled_reader(live, "127.0.2.2")
        closing = stalled_reader(live, "127.0.2.3")
        wait_until_stuck(caplog)
        half_closing.shutdown(socket.SHUT_WR)
        time.sleep(0.2)  # the server sees the end of the request stream first
        half_closing.close()
        closing.close()
        time.sleep(1.0)  # what the server does with the closed connections happens now
        assert httpx.get(f"{live.url}/healthz", timeout=5).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_one_address_cannot_take_every_connection(live: LiveServer) -> None:
    cap = LIMITS["max_connections_per_client"]
    held = [connect(live, "127.0.3.1") for _ in range(cap)]
    try:
        with connect(live, "127.0.3.1") as extra:
            response, _ = read_until_closed(extra)
        status, body = error_of(response)
        assert status == 429 and body["code"] == "too_many_connections"
        assert "PERCEPTRON_MAX_CONNECTIONS_PER_CLIENT" in body["error"]
        with connect(live, "127.0.3.2") as other:
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert read_until_closed(other)[0].startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
    # The address's connections are counted down as they close.
    time.sleep(0.3)
    with connect(live, "127.0.3.1") as again:
        again.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert read_until_closed(again)[0].startswith(b"HTTP/1.1 200")


def test_a_second_host_header_gets_400(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(
            b"PUT /models/digit/served-version HTTP/1.1\r\nHost: evil.example\r\n"
            b"Host: localhost\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n"
            b'{"version": 1}'
        )
        response, _ = read_until_closed(sock)
    status, body = error_of(response)
    assert status == 400 and "more than one Host header" in body["error"]
