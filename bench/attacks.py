"""The attacks `python -m bench abuse` runs against a live server, each an async function that
fills an `Outcome` with what the attacker got. Attackers connect from loopback addresses of
their own (Linux routes all of 127/8 to loopback), apart from the honest clients' 127.0.0.9, so
per-address limits tell them apart as they would two machines.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench import hostile_files

ATTACKER = "127.0.0.1"
SLOW_READER = "127.0.0.2"
FEEDBACK_SENDERS = [f"127.0.1.{n}" for n in range(1, 17)]
ATTACK_S = 12.0
"""How long a repeated attack runs (connection attacks wait for the server's deadlines)."""
CLOSE_TARGET_S = 20.0
SLOW_READERS_PER_PROCESS = 1050
SLOW_READER_HOLD_S = 40.0
"""How long slow readers keep their sockets unless the server closes them first."""


@dataclass
class Outcome:
    name: str
    description: str
    statuses: Counter[str] = field(default_factory=Counter)
    """What the attacker got."""
    notes: list[str] = field(default_factory=list)
    close_max_s: float | None = None
    """Slowest close by the server of an attacking socket (connection attacks)."""
    open_after_s: int = 0
    """Attacking sockets still open when the attack gave up waiting for the server."""


@dataclass(frozen=True)
class Target:
    port: int
    processes: int


Attack = Callable[[Target, Outcome], Awaitable[None]]

# -- raw HTTP ---------------------------------------------------------------------------------


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    host: str | None = "127.0.0.1",
    close: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"Host: {host}"] if host is not None else []
    lines += ["Connection: close"] if close else []
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def exchange(
    port: int, request: bytes, source: str = ATTACKER, limit_s: float = 120.0
) -> tuple[str, bytes]:
    """Sends `request` on a new connection from `source`; (status, body) once the server
    closes: 'closed' when it hung up without an answer, 'timeout' past `limit_s`."""
    answer = b""
    try:
        async with asyncio.timeout(limit_s):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            try:
                writer.write(request)
                await writer.drain()
                answer = await reader.read(-1)
            finally:
                writer.close()
    except OSError:
        pass  # a reset: what was read before it, if anything, is the answer
    except TimeoutError:
        return "timeout", b""
    if not answer:
        return "closed", b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split()[1].decode(), body


async def status_of(port: int, request: bytes, source: str = ATTACKER) -> str:
    return (await exchange(port, request, source))[0]


async def repeat(
    seconds: float, clients: int, one: Callable[[int], Awaitable[str]]
) -> Counter[str]:
    """`clients` loops calling `one(client index)` until `seconds` have passed."""
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        while time.monotonic() < deadline:
            statuses[await one(index)] += 1

    await asyncio.gather(*(client(index) for index in range(clients)))
    return statuses


async def times(count: int, clients: int, one: Callable[[int], Awaitable[str]]) -> Counter[str]:
    """`count` calls of `one(i)`, at most `clients` at a time."""
    statuses: Counter[str] = Counter()
    limit = asyncio.Semaphore(clients)

    async def run(index: int) -> None:
        async with limit:
            statuses[await one(index)] += 1

    await asyncio.gather(*(run(index) for index in range(count)))
    return statuses


# -- payloads ---------------------------------------------------------------------------------

BOUNDARY = "abuse"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    for filename, data in files:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def canvas_png() -> bytes:
    """A 7 drawn on a 280x280 transparent canvas, as the web page uploads it."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(70, 60), (210, 60), (120, 230)], fill=(0, 0, 0, 255), width=18)
    return encoded(image, "PNG")


def noisy_png(target_bytes: int) -> bytes:
    """A greyscale PNG of random pixels of about `target_bytes` (noise does not compress)."""
    side = int(target_bytes**0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)
    return encoded(Image.fromarray(pixels, "L"), "PNG", compress_level=1)


def faint_noise_digit(target_bytes: int) -> bytes:
    """A greyscale PNG of about `target_bytes`: faint noise (which does not compress) behind a
    bright bar the service reads as a digit, so that feedback stores it."""
    side = int((target_bytes * 8 / 6) ** 0.5)  # noise of 0..40 takes about 6 bits a pixel
    pixels = np.random.default_rng(0).integers(0, 41, (side, side), dtype=np.uint8)
    pixels[side // 5 : side * 4 // 5, side * 9 // 20 : side * 11 // 20] = 255
    return encoded(Image.fromarray(pixels, "L"), "PNG", compress_level=1)


def flat_json_array(total_bytes: int) -> bytes:
    """`[0,0,...]` of about `total_bytes`: two bytes a value."""
    return b"[" + b"0," * (total_bytes // 2 - 1) + b"0]"


def upload(data: bytes, content_type: str = "image/png") -> bytes:
    return request_bytes("POST", "/digit", data, {"Content-Type": content_type})


# -- decoding costs ---------------------------------------------------------------------------


def _uploads(build: Callable[[], bytes], clients: int) -> Attack:
    async def attack(target: Target, outcome: Outcome) -> None:
        request = upload(build())
        outcome.statuses = await repeat(
            ATTACK_S, clients, lambda _: status_of(target.port, request)
        )

    return attack


def _lossless_webp(side: int) -> bytes:
    return encoded(Image.new("L", (side, side), 255), "WEBP", lossless=True)


def _float_tiff(side: int) -> bytes:
    pixels = np.ones((side, side), np.float32)
    return encoded(Image.fromarray(pixels), "TIFF", compression="tiff_adobe_deflate")


async def pixel_bomb_batch(target: Target, outcome: Outcome) -> None:
    body = multipart([(f"{i}.webp", _lossless_webp(5000)) for i in range(50)])
    request = request_bytes("POST", "/digit", body, {"Content-Type": MULTIPART})
    outcome.statuses = await repeat(ATTACK_S, 4, lambda _: status_of(target.port, request))


async def pixel_bombs_in_parallel(target: Target, outcome: Outcome) -> None:
    requests = [upload(_lossless_webp(5000)), upload(_float_tiff(5000))] * 6
    outcome.statuses = await repeat(
        ATTACK_S, len(requests), lambda i: status_of(target.port, requests[i])
    )


async def inline_bombs(target: Target, outcome: Outcome) -> None:
    png = upload(hostile_files.png_with_iccp_chunks(64 * 1024))
    jpeg = upload(hostile_files.jpeg_with_empty_scans(64 * 1024, side=280))
    outcome.statuses = await times(200, 8, lambda i: status_of(target.port, png if i % 2 else jpeg))


async def json_arrays(target: Target, outcome: Outcome) -> None:
    array = flat_json_array(9_800_000)
    tensor = b'{"name": "image", "shape": [4900000], "datatype": "FP32", "data": ' + array + b"}"
    json_type = {"Content-Type": "application/json"}
    requests = [
        request_bytes("POST", path, body, json_type)
        for path, body in (
            ("/v1/models/digit:predict", b'{"instances": ' + array + b"}"),
            ("/v2/models/digit/infer", b'{"inputs": [' + tensor + b"]}"),
            ("/mpg", array),
        )
    ]
    outcome.statuses = await times(20, 4, lambda i: status_of(target.port, requests[i % 3]))


async def json_within_caps(target: Target, outcome: Outcome) -> None:
    images = 256  # PERCEPTRON_MAX_BATCH_IMAGES: the most values the value cap lets through
    rows = "[" + ",".join(["[" + ",".join(["0.12345678901234567"] * 28) + "]"] * 28) + "]"
    instances = ("[" + ",".join([rows] * images) + "]").encode()
    flat = ("[" + ",".join(["0.12345678901234567"] * (images * 784)) + "]").encode()
    tensor = b'{"name": "image", "shape": [256, 28, 28], "datatype": "FP32", "data": ' + flat
    json_type = {"Content-Type": "application/json"}
    requests = [
        request_bytes("POST", path, body, json_type)
        for path, body in (
            ("/v1/models/digit:predict", b'{"instances": ' + instances + b"}"),
            ("/v2/models/digit/infer", b'{"inputs": [' + tensor + b"}]}"),
        )
    ]
    outcome.statuses = await times(20, 4, lambda i: status_of(target.port, requests[i % 2]))


# -- connections ------------------------------------------------------------------------------


async def huge_header(target: Target, outcome: Outcome) -> None:
    async def one(_: int) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        status = "closed"
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(64 * 16):  # up to 64 MB, until the server hangs up
                writer.write(b"a" * 65536)
                await writer.drain()
            status = (await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)).split()[1].decode()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            # The server hung up mid-send: its answer, if any, is already buffered here.
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 2)
                status = head.split()[1].decode()
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                pass
        finally:
            writer.close()
        return status

    outcome.statuses = await repeat(ATTACK_S / 2, 4, one)


async def _hold(target: Target, count: int, outcome: Outcome, send: bytes, trickle: bool) -> None:
    """Opens `count` connections, each sending `send` (a byte a second when `trickle`), and
    times how long the server takes to close each one."""
    started = time.monotonic()

    async def one() -> float | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        except OSError:
            outcome.statuses["refused"] += 1
            return 0.0
        try:
            for byte in send if trickle else []:
                writer.write(bytes([byte]))
                try:
                    await asyncio.wait_for(reader.read(65536), 1.0)
                    break  # the server answered or closed
                except TimeoutError:
                    continue
                except OSError:
                    break
            if send and not trickle:
                writer.write(send)
            closed = await _wait_closed(reader, started, CLOSE_TARGET_S + 10)
            outcome.statuses["closed by server" if closed is not None else "still open"] += 1
            return closed
        finally:
            writer.close()

    closes = await asyncio.gather(*(one() for _ in range(count)))
    closed = [t for t in closes if t is not None]
    outcome.close_max_s = max(closed) if closed else None
    outcome.open_after_s = sum(1 for t in closes if t is None)


async def _wait_closed(reader: asyncio.StreamReader, started: float, limit: float) -> float | None:
    try:
        async with asyncio.timeout(max(0.0, limit - (time.monotonic() - started))):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


async def idle_sockets(target: Target, outcome: Outcome) -> None:
    await _hold(target, 3000, outcome, b"", trickle=False)


async def slowloris(target: Target, outcome: Outcome) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: a\r\n" * 20
    await _hold(target, 300, outcome, head, trickle=True)


async def short_body(target: Target, outcome: Outcome) -> None:
    head = b"POST /mpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    await _hold(target, 300, outcome, head + b'Content-Length: 1000\r\n\r\n{"cyl', trickle=False)


async def event_streams(target: Target, outcome: Outcome) -> None:
    job = {"model": "mpg", "hyperparameters": {"epochs": 5}, "promote": "never"}
    json_type = {"Content-Type": "application/json"}
    _, answer = await exchange(
        target.port, request_bytes("POST", "/jobs", json.dumps(job).encode(), json_type)
    )
    request = request_bytes("GET", f"/jobs/{json.loads(answer)['id']}/events")
    held: list[asyncio.StreamWriter] = []

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
            outcome.statuses[head.split()[1].decode()] += 1
            held.append(writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            outcome.statuses["closed"] += 1

    await asyncio.gather(*(one() for _ in range(1500)))
    await asyncio.sleep(ATTACK_S / 2)
    for writer in held:
        writer.close()


async def slow_readers(target: Target, outcome: Outcome) -> None:
    """Connections that pipeline 40 requests for the largest answer and never read."""
    request = request_bytes("GET", "/openapi.json", close=False) * 40
    started = time.monotonic()
    closed_after: list[float] = []

    async def one(index: int) -> None:
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", target.port, local_addr=(SLOW_READER, 0)
            )
        except OSError:
            outcome.statuses["refused"] += 1
            return
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(request)
        # EOF shows only once buffered answers are read: poll the kernel's state instead.
        while time.monotonic() < started + SLOW_READER_HOLD_S:
            if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1:  # established
                closed_after.append(time.monotonic() - started)
                outcome.statuses["closed by server"] += 1
                break
            await asyncio.sleep(0.5)
        else:
            outcome.statuses["held to the end"] += 1
            writer.write_eof()  # leave as a client does: end the request stream, then go
            await asyncio.sleep(1.0)
        writer.transport.abort()

    await asyncio.gather(*(one(i) for i in range(SLOW_READERS_PER_PROCESS * target.processes)))
    if closed_after:
        outcome.close_max_s = max(closed_after)


# -- storage and administration ---------------------------------------------------------------


async def feedback_flood(target: Target, outcome: Outcome) -> None:
    """Sixteen addresses storing 2 MiB originals as fast as they are let, and another site's
    page doing the same through a visitor's browser."""
    body = multipart([("x.png", faint_noise_digit(2 * 2**20 - 4096))], {"label": "7"})
    request = request_bytes("POST", "/digit/feedback", body, {"Content-Type": MULTIPART})
    cross = {
        "Content-Type": MULTIPART,
        "Origin": "https://evil.example",
        "Sec-Fetch-Site": "cross-site",
    }
    cross_site = request_bytes("POST", "/digit/feedback", body, cross)
    senders = [*FEEDBACK_SENDERS, "127.0.2.1"]

    async def one(index: int) -> str:
        if index == len(FEEDBACK_SENDERS):
            return "cross-site " + await status_of(target.port, cross_site, senders[index])
        return await status_of(target.port, request, senders[index])

    outcome.statuses = await repeat(ATTACK_S * 2, len(senders), one)


FULL_STORE_UPLOADS = 120
"""2 MiB feedback uploads sample-listing sends first when the store is nearly empty: more than
the run's quota holds, so the listing reads a full store."""


async def sample_listing(target: Target, outcome: Outcome) -> None:
    """An administrator's page of 500 samples, ten times, on a full store (filled first with
    2 MiB originals when feedback-flood has not filled it)."""

    async def stored() -> int:
        _, body = await exchange(target.port, request_bytes("GET", "/samples?limit=1"))
        return int(json.loads(body or b"{}").get("total", 0))

    if await stored() < FULL_STORE_UPLOADS // 2:
        form = multipart([("x.png", faint_noise_digit(2 * 2**20 - 4096))], {"label": "7"})
        request = request_bytes("POST", "/digit/feedback", form, {"Content-Type": MULTIPART})

        async def one(index: int) -> str:
            return await status_of(
                target.port, request, FEEDBACK_SENDERS[index % len(FEEDBACK_SENDERS)]
            )

        filled = await times(FULL_STORE_UPLOADS, 4, one)
        outcome.notes.append(f"filled first: {dict(filled)}")
    outcome.notes.append(f"{await stored()} samples stored")
    sizes = []
    for _ in range(10):
        status, body = await exchange(target.port, request_bytes("GET", "/samples?limit=500"))
        outcome.statuses[status] += 1
        sizes.append(len(body))
    outcome.notes.append(f"answers of {max(sizes) / 1024:.0f} KiB")


async def host_headers(target: Target, outcome: Outcome) -> None:
    """A second Host on an admin call from another site; malformed Host ports."""
    pin = b'{"version": 1}'
    duplicate = (
        b"PUT /models/digit/served-version HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n"
        b"Origin: http://evil.example\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(pin)}\r\nConnection: close\r\n\r\n".encode()
        + pin
    )
    requests = {"duplicate Host, admin PUT": duplicate} | {
        f"Host: {name}": request_bytes("GET", "/models", host=name)
        for name in ("localhost:8200@evil.com", "localhost:evil", "[::1]evil")
    }
    for label, request in requests.items():
        outcome.statuses[f"{label}: {await status_of(target.port, request)}"] += 1
    await exchange(target.port, request_bytes("DELETE", "/models/digit/served-version"))


ENDLESS_JOB: dict[str, Any] = {
    "model": "digit",
    "hyperparameters": {
        "batch_size": 1,
        "hidden_units": [2048] * 6,
        "conv_filters": [256, 256, 256],
        "epochs": 100,
    },
}
"""A job the estimator puts at about 14 days (batch 1, six 2048-unit layers, 256-filter
convolutions): it must be refused before it queues."""
HUNGRY_JOB: dict[str, Any] = {
    "model": "digit",
    "hyperparameters": {"conv_filters": [256, 256, 256], "batch_size": 4096, "epochs": 1},
    "promote": "never",
}
"""A job within the time budget that needs about 30 GiB for a training step."""


def _job_attack(job: dict[str, Any], seconds: float) -> Attack:
    async def attack(target: Target, outcome: Outcome) -> None:
        body = json.dumps(job).encode()
        request = request_bytes("POST", "/jobs", body, {"Content-Type": "application/json"})
        outcome.statuses = await repeat(seconds, 2, lambda _: status_of(target.port, request))

    return attack


async def wrong_answers(target: Target, outcome: Outcome) -> None:
    huge = "9" * 4400
    json_type = {"Content-Type": "application/json"}
    tensor = {"name": "image", "shape": [1] * 70, "datatype": "FP32", "data": [0.5]}
    requests = [
        request_bytes("GET", f"/v1/models/digit/versions/{huge}"),
        request_bytes("GET", f"/v2/models/digit/versions/{huge}"),
        request_bytes(
            "POST", "/v2/models/digit/infer", json.dumps({"inputs": [tensor]}).encode(), json_type
        ),
        request_bytes("POST", "/digit", b'{"pixels": [[-5, 1], [1, 1e39]]}', json_type),
        request_bytes(
            "POST",
            "/digit",
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nab',
            {"Content-Type": "multipart/form-data; boundary=x"},
        ),
        request_bytes("POST", "/mpg", b"\x1f\x8b", {**json_type, "Content-Encoding": "gzip"}),
        request_bytes("PUT", "/models/digit/served-version", b'{"version": true}', json_type),
    ]
    for _ in range(20):
        for request in requests:
            outcome.statuses[await status_of(target.port, request)] += 1


ATTACKS: dict[str, tuple[str, Attack]] = {
    "pixel-bomb-batch": (
        "50 lossless WebP of 5000x5000 in one multipart body, 4 clients",
        pixel_bomb_batch,
    ),
    "pixel-bombs-parallel": (
        "12 clients each sending one 25 MP WebP or float TIFF",
        pixel_bombs_in_parallel,
    ),
    "png-metadata": (
        "2 clients each sending a 280x280 PNG padded to 9.4 MB with iCCP chunks",
        _uploads(lambda: hostile_files.png_with_iccp_chunks(9_400_000), 2),
    ),
    "jpeg-scans": (
        "2 clients each sending a 2 MB progressive 1000x1000 JPEG of about 170,000 empty scans",
        _uploads(lambda: hostile_files.jpeg_with_empty_scans(2_000_000), 2),
    ),
    "png-chunks": (
        "2 clients each sending a 280x280 PNG padded to 9.4 MB with empty IDAT chunks",
        _uploads(lambda: hostile_files.png_with_empty_idat_chunks(9_400_000), 2),
    ),
    "inline-bombs": (
        "200 uploads of 64 KB (iCCP PNG, empty-scan JPEG, both 280x280), 8 at a time",
        inline_bombs,
    ),
    "json-arrays": (
        "20 flat 9.8 MB JSON arrays to TF Serving, v2 and /mpg, 4 at a time",
        json_arrays,
    ),
    "json-within-caps": (
        "20 of the costliest JSON bodies the value caps let through (256 images of 17-digit "
        "numbers, 4.6 MB) to TF Serving and v2, 4 at a time",
        json_within_caps,
    ),
    "huge-header": ("a header streamed up to 64 MB, 4 clients", huge_header),
    "idle-sockets": ("3,000 connections that never send a byte", idle_sockets),
    "slowloris": ("300 connections sending a header byte a second", slowloris),
    "short-body": ("300 bodies shorter than their Content-Length", short_body),
    "event-streams": ("1,500 event streams opened on one job", event_streams),
    "feedback-flood": (
        f"{len(FEEDBACK_SENDERS)} addresses storing 2 MiB feedback originals as fast as allowed, "
        "and another site's page doing the same",
        feedback_flood,
    ),
    "sample-listing": ("GET /samples?limit=500, 10 times, on a full store", sample_listing),
    "host-headers": (
        "a second Host on an admin PUT from another site; malformed ports",
        host_headers,
    ),
    "endless-job": (
        "a digit job estimated at 14 days (batch 1, 6x2048, 256 filters)",
        _job_attack(ENDLESS_JOB, ATTACK_S / 2),
    ),
    "hungry-job": (
        "a digit job of 256-filter convolutions at batch 4,096",
        _job_attack(HUNGRY_JOB, 2.0),
    ),
    "wrong-answers": ("malformed requests of every kind, 20 times each", wrong_answers),
    "slow-readers": (
        f"{SLOW_READERS_PER_PROCESS:,} connections per process, each pipelining 40 GET "
        "/openapi.json and never reading",
        slow_readers,
    ),
}
