"""Attacks against a live `python -m service api` on loopback: is it still healthy?

Each attack is repeated for a bounded time while a probe, in its own process, times
`GET /healthz` on a fresh connection every 0.1 s. Per attack: the statuses the attack got, the
slowest /healthz, peak resident memory above the idle server, peak open descriptors, and for the
connection attacks how long the server took to close the attacker's sockets. Targets: /healthz
under 0.5 s, peak RSS within 1.5 GB of idle, idle and slow connections closed within 20 s, no
500, every probe answered. Writes the `abuse` section.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import resource
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import numpy as np
from PIL import Image

from bench import options, procstat
from bench.results import Section, table
from bench.servers import RunningServer, ServerSpec, running

PROBE_INTERVAL_S = 0.1
HEALTHZ_TARGET_S = 0.5
RSS_TARGET_MIB = 1536
CLOSE_TARGET_S = 20.0
ATTACK_S = 12.0
"""How long each attack is repeated (connection attacks wait for the server's deadlines)."""


@dataclass
class Outcome:
    name: str
    description: str
    statuses: Counter[str] = field(default_factory=Counter)
    healthz_max_s: float = 0.0
    healthz_failures: Counter[str] = field(default_factory=Counter)
    """Probe answers other than 200, by status ('closed': the connection was dropped)."""
    probes: int = 0
    peak_rss_over_idle_mib: float = 0.0
    peak_fds: int = 0
    close_max_s: float | None = None
    """Slowest close by the server of an attacking socket (connection attacks)."""
    open_after_s: int | None = None
    """Attacking sockets still open when the attack gave up waiting."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "statuses": dict(self.statuses),
            "healthz_failures": dict(self.healthz_failures),
        }


# -- payloads ---------------------------------------------------------------------------------


def lossless_webp(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def float_tiff(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ones((side, side), np.float32)).save(
        buffer, "TIFF", compression="tiff_adobe_deflate"
    )
    return buffer.getvalue()


def multipart(files: list[tuple[str, bytes]], boundary: str = "abuse") -> bytes:
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# -- raw HTTP ---------------------------------------------------------------------------------


async def exchange(port: int, request: bytes, limit_s: float = 60.0) -> tuple[str, float]:
    """Sends `request` on a new connection, reads to the server's close: (status, seconds)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n")
                await reader.read()
            finally:
                writer.close()
        return head.split()[1].decode(), time.monotonic() - started
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return "closed", time.monotonic() - started
    except TimeoutError:
        return "timeout", time.monotonic() - started


def request_bytes(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def wait_closed(reader: asyncio.StreamReader, started: float, limit: float) -> float | None:
    """Seconds until the server closes the connection, None if it is still open at `limit`."""
    try:
        async with asyncio.timeout(max(0.0, limit - (time.monotonic() - started))):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


# -- the attacks ------------------------------------------------------------------------------

Attack = Callable[[int, Outcome], Awaitable[None]]


async def repeat(seconds: float, clients: int, one: Callable[[], Awaitable[str]]) -> Counter[str]:
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            statuses[await one()] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


async def pixel_bomb_batch(port: int, outcome: Outcome) -> None:
    body = multipart([(f"{i}.webp", lossless_webp(5000)) for i in range(50)])
    request = request_bytes(
        "POST", "/digit", body, {"Content-Type": "multipart/form-data; boundary=abuse"}
    )
    outcome.statuses = await repeat(ATTACK_S, 4, lambda: _status(exchange(port, request)))


async def pixel_bombs_in_parallel(port: int, outcome: Outcome) -> None:
    webp = request_bytes("POST", "/digit", lossless_webp(5000), {"Content-Type": "image/webp"})
    tiff = request_bytes("POST", "/digit", float_tiff(5000), {"Content-Type": "image/tiff"})
    requests = [webp, tiff] * 6
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + ATTACK_S

    async def client(request: bytes) -> None:
        while time.monotonic() < deadline:
            statuses[(await exchange(port, request))[0]] += 1

    await asyncio.gather(*(client(request) for request in requests))
    outcome.statuses = statuses


async def huge_header(port: int, outcome: Outcome) -> None:
    async def one() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status = "closed"
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            block = b"a" * 65536
            for _ in range(64 * 16):  # up to 64 MB, until the server hangs up
                writer.write(block)
                await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
            status = head.split()[1].decode()
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


async def _hold(port: int, count: int, outcome: Outcome, send: bytes, trickle: bool) -> None:
    """Opens `count` connections, each sending `send` (a byte a second when `trickle`), and
    times how long the server takes to close each one."""
    started = time.monotonic()

    async def one() -> float | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            outcome.statuses["refused"] += 1
            return 0.0
        try:
            if trickle:
                for byte in send:
                    writer.write(bytes([byte]))
                    try:
                        await asyncio.wait_for(reader.read(65536), 1.0)
                        break  # the server answered or closed
                    except TimeoutError:
                        continue
                    except OSError:
                        break
            elif send:
                writer.write(send)
            closed = await wait_closed(reader, started, CLOSE_TARGET_S + 10)
            outcome.statuses["closed by server" if closed is not None else "still open"] += 1
            return closed
        finally:
            writer.close()

    times = await asyncio.gather(*(one() for _ in range(count)))
    closed = [t for t in times if t is not None]
    outcome.close_max_s = max(closed) if closed else None
    outcome.open_after_s = sum(1 for t in times if t is None)


async def idle_sockets(port: int, outcome: Outcome) -> None:
    await _hold(port, 3000, outcome, b"", trickle=False)


async def slowloris(port: int, outcome: Outcome) -> None:
    await _hold(
        port, 300, outcome, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: a\r\n" * 20, True
    )


async def short_body(port: int, outcome: Outcome) -> None:
    head = b"POST /mpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    await _hold(port, 300, outcome, head + b'Content-Length: 1000\r\n\r\n{"cyl', trickle=False)


async def event_streams(port: int, outcome: Outcome) -> None:
    job = {"model": "mpg", "hyperparameters": {"epochs": 5}, "promote": "never"}
    created = await asyncio.to_thread(_post_json, port, "/jobs", job)
    request = request_bytes("GET", f"/jobs/{created['id']}/events")
    statuses: Counter[str] = Counter()
    held: list[asyncio.StreamWriter] = []

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
            statuses[head.split()[1].decode()] += 1
            held.append(writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            statuses["closed"] += 1

    await asyncio.gather(*(one() for _ in range(1500)))
    await asyncio.sleep(ATTACK_S / 2)
    for writer in held:
        writer.close()
    outcome.statuses = statuses


ENDLESS_JOB = {
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


async def endless_job(port: int, outcome: Outcome) -> None:
    body = json.dumps(ENDLESS_JOB).encode()
    request = request_bytes("POST", "/jobs", body, {"Content-Type": "application/json"})
    outcome.statuses = await repeat(ATTACK_S / 2, 2, lambda: _status(exchange(port, request)))


async def wrong_answers(port: int, outcome: Outcome) -> None:
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
            outcome.statuses[(await exchange(port, request))[0]] += 1


async def _status(pending: Awaitable[tuple[str, float]]) -> str:
    return (await pending)[0]


def _post_json(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


ATTACKS: dict[str, tuple[str, Attack]] = {
    "pixel-bomb-batch": (
        "50 lossless WebP of 5000x5000 in one multipart body, 4 clients",
        pixel_bomb_batch,
    ),
    "pixel-bombs-parallel": (
        "12 clients each sending one 25 MP WebP or float TIFF",
        pixel_bombs_in_parallel,
    ),
    "huge-header": ("a header streamed up to 64 MB, 4 clients", huge_header),
    "idle-sockets": ("3,000 connections that never send a byte", idle_sockets),
    "slowloris": ("300 connections sending a header byte a second", slowloris),
    "short-body": ("300 bodies shorter than their Content-Length", short_body),
    "event-streams": ("1,500 event streams opened on one job", event_streams),
    "endless-job": ("a digit job estimated at 14 days (batch 1, 6x2048, 256 filters)", endless_job),
    "wrong-answers": ("malformed requests of every kind, 20 times each", wrong_answers),
}


# -- running ----------------------------------------------------------------------------------


def probe(port: int, ready: Event, stop: Event, answers: Queue[list[tuple[str, float]]]) -> None:
    """Times `GET /healthz` on a fresh blocking connection every PROBE_INTERVAL_S until `stop`.

    It runs in its own process: inside the attacker's event loop, a probe would also wait for
    the attacker's own thousands of sockets, and time the client rather than the server."""
    request = request_bytes("GET", "/healthz")
    timed: list[tuple[str, float]] = []
    while not stop.is_set():
        started = time.monotonic()
        status = "closed"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            if answer:
                status = answer.split(b" ", 2)[1].decode()
        except TimeoutError:
            status = "timeout"
        except OSError:
            pass
        timed.append((status, time.monotonic() - started))
        ready.set()
        stop.wait(PROBE_INTERVAL_S)
    answers.put(timed)


async def sample(pid: int, idle_rss: float, outcome: Outcome, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rss = procstat.memory(pid).rss_mib
        outcome.peak_rss_over_idle_mib = max(outcome.peak_rss_over_idle_mib, rss - idle_rss)
        outcome.peak_fds = max(outcome.peak_fds, procstat.open_fds(pid))
        await asyncio.sleep(0.1)


async def run_attack(server: RunningServer, name: str) -> Outcome:
    description, attack = ATTACKS[name]
    outcome = Outcome(name, description)
    idle_rss = procstat.memory(server.pid).rss_mib
    spawn = multiprocessing.get_context("spawn")
    ready, stop_probe, answers = spawn.Event(), spawn.Event(), spawn.Queue()
    prober = spawn.Process(
        target=probe, args=(server.port, ready, stop_probe, answers), daemon=True
    )
    prober.start()
    if not await asyncio.to_thread(ready.wait, 60):
        raise RuntimeError("the /healthz probe did not start")
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(server.pid, idle_rss, outcome, stop))
    try:
        await attack(server.port, outcome)
    finally:
        stop.set()
        stop_probe.set()
        await sampler
        timed = await asyncio.to_thread(answers.get, True, 30)
        prober.join()
    for status, seconds in timed:
        outcome.healthz_max_s = max(outcome.healthz_max_s, seconds)
        outcome.probes += 1
        if status != "200":
            outcome.healthz_failures[status] += 1
    return outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    parser.add_argument(
        "--only", type=options.csv, default=tuple(ATTACKS), help="attacks: " + ",".join(ATTACKS)
    )


def run(args: argparse.Namespace) -> list[Section]:
    unknown = set(args.only) - set(ATTACKS)
    if unknown:
        raise SystemExit(f"unknown attacks {sorted(unknown)}; known: {list(ATTACKS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attacker's sockets
    outcomes = []
    with running(ServerSpec("ours", args.models_dir), args.run_dir) as server:
        idle = procstat.memory(server.pid).rss_mib
        for name in args.only:
            procstat.wait_idle(server.pid)
            outcome = asyncio.run(run_attack(server, name))
            print(f"{name}: {outcome.as_dict()}", flush=True)
            outcomes.append(outcome.as_dict())
    report = {"idle_rss_mib": round(idle, 1), "server_fd_limit": soft, "outcomes": outcomes}
    (args.run_dir / "abuse.json").write_text(json.dumps(report, indent=2))
    return [Section("abuse", render(report))]


def met(o: dict[str, Any]) -> bool:
    """Whether an attack's outcome meets every target."""
    return (
        o["healthz_max_s"] < HEALTHZ_TARGET_S
        and o["peak_rss_over_idle_mib"] < RSS_TARGET_MIB
        and not o["statuses"].get("500")
        and not o["healthz_failures"]
        and (o["close_max_s"] is None or o["close_max_s"] < CLOSE_TARGET_S)
        and not o["open_after_s"]
    )


def render(report: dict[str, Any]) -> str:
    rows = []
    for o in report["outcomes"]:
        close = "" if o["close_max_s"] is None else f"{o['close_max_s']:.1f}"
        if o["open_after_s"]:
            close += f" ({o['open_after_s']} still open)"
        rows.append(
            [f"{o['name']}: {o['description']}", _counts(o["statuses"]),
             f"{o['healthz_max_s']:.3f}", f"{_counts(o['healthz_failures']) or 0} / {o['probes']}",
             f"{o['peak_rss_over_idle_mib']:.0f}", str(o["peak_fds"]), close,
             "yes" if met(o) else "**no**"]
        )  # fmt: skip
    columns = ("attack", "answers", "/healthz max (s)", "/healthz failed / probes",
               "peak RSS over idle (MiB)", "peak fds", "slowest close (s)", "met")  # fmt: skip
    return "\n".join(
        [
            "The /healthz probe runs in its own process, as an independent client would. Idle "
            f"server RSS before the attacks: {report['idle_rss_mib']:.0f} MiB. Targets: /healthz "
            f"< {HEALTHZ_TARGET_S} s, peak RSS within {RSS_TARGET_MIB} MiB of idle, attacking "
            f"connections closed within {CLOSE_TARGET_S:.0f} s, no 500, and every /healthz probe "
            "answered.",
            "",
            table(columns, rows),
        ]
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items()))
