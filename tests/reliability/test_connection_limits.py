"""Connection limits on a live server (service/http/connections.py): oversized or too many headers
get 431, headers that trickle in get 408, silent and kept-alive connections are closed, a body
shorter than its Content-Length is cut off, past the connection cap the longest-idle connection
makes room, and protocol errors come in the service's error shape. Limits are set small so
every deadline passes in about a second."""

from __future__ import annotations

import json
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
}
CLOSE_WITHIN_S = 5.0
"""How long a test waits for the server to close a connection whose 1 s deadline has passed."""


@pytest.fixture(scope="module")
def live(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("connection-limits")
    shutil.copytree(tiny_models, root / "models")
    with serve(root / "models", root / "var", **LIMITS) as server:
        yield server


def connect(server: LiveServer) -> socket.socket:
    host, port = server.host_port.split(":")
    sock = socket.create_connection((host, int(port)), timeout=CLOSE_WITHIN_S + 5)
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
    idle = [connect(live) for _ in range(3 * LIMITS["max_connections"])]
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
