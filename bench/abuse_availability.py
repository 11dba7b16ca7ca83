"""Attacks on availability and storage, against a live `python -m service api` on loopback with
one and with two worker processes, each measured against what a client that is not the attacker
sees while it runs:

* a `/healthz` probe on a fresh connection every 0.1 s (target: 0.5 s at worst);
* an honest upload (a 280x280 canvas PNG to /digit) every 0.25 s (target: 1 s at worst, no
  503 unless the service is genuinely at capacity);
* the server's log: 500s and unhandled-error tracebacks (target: none);
* resident memory of the serving processes 30 s after the attack ends (target: within 100 MB
  of the level before it), and the state folder's growth (target: within the feedback quota).

The honest clients connect from 127.0.0.9 and the attackers from other loopback addresses
(Linux routes all of 127/8 to loopback), so per-address limits can tell them apart as they
would tell apart two machines.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import re
import resource
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench import hostile_files, machine, procstat
from bench.servers import RunningServer, ServerSpec, running

REPO = Path(__file__).resolve().parent.parent
HONEST_ADDRESS = "127.0.0.9"
ATTACKER_ADDRESS = "127.0.0.2"
HEALTHZ_INTERVAL_S = 0.1
UPLOAD_INTERVAL_S = 0.25
SETTLE_S = 30.0
"""Resident memory is read this long after an attack ends."""
HEALTHZ_TARGET_S = 0.5
UPLOAD_TARGET_S = 1.0
RSS_TARGET_MIB = 100.0
ATTACK_S = 12.0
SLOW_READER_HOLD_S = 40.0
"""How long the slow readers keep their sockets open unless the server closes them first."""
SLOW_READER_PIPELINE = 40
SLOW_READERS_PER_PROCESS = 1050


@dataclass
class Outcome:
    name: str
    description: str
    statuses: Counter[str] = field(default_factory=Counter)
    """What the attacker got."""
    healthz: list[tuple[str, float]] = field(default_factory=list)
    honest: list[tuple[str, float]] = field(default_factory=list)
    idle_rss_mib: float = 0.0
    peak_rss_over_idle_mib: float = 0.0
    settled_rss_over_idle_mib: float = 0.0
    disk_growth_mib: float = 0.0
    log_500s: int = 0
    log_tracebacks: int = 0
    notes: list[str] = field(default_factory=list)
    """What the attack found beyond statuses (a listing's size, when sockets were closed)."""

    def summary(self) -> dict[str, Any]:
        healthz = [seconds for _, seconds in self.healthz]
        honest = [seconds for _, seconds in self.honest]
        return {
            "name": self.name,
            "description": self.description,
            "statuses": dict(self.statuses),
            "healthz_max_s": round(max(healthz, default=0.0), 3),
            "healthz_median_s": round(float(np.median(healthz)) if healthz else 0.0, 3),
            "healthz_failed": dict(Counter(s for s, _ in self.healthz if s != "200")),
            "healthz_probes": len(healthz),
            "honest_max_s": round(max(honest, default=0.0), 3),
            "honest_median_s": round(float(np.median(honest)) if honest else 0.0, 3),
            "honest_failed": dict(Counter(s for s, _ in self.honest if s != "200")),
            "honest_uploads": len(honest),
            "idle_rss_mib": round(self.idle_rss_mib),
            "peak_rss_over_idle_mib": round(self.peak_rss_over_idle_mib),
            "settled_rss_over_idle_mib": round(self.settled_rss_over_idle_mib),
            "disk_growth_mib": round(self.disk_growth_mib, 1),
            "log_500s": self.log_500s,
            "log_tracebacks": self.log_tracebacks,
            "notes": self.notes,
        }


# -- raw HTTP from a chosen loopback address --------------------------------------------------


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
    if host is not None:
        lines.append(f"Host: {host}")
    if close:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def exchange(
    port: int, request: bytes, source: str = ATTACKER_ADDRESS, limit_s: float = 120.0
) -> tuple[str, bytes]:
    """Sends `request` on a new connection from `source`; (status, body) once the server
    closes ('closed' when it hung up without an answer, 'timeout' past `limit_s`)."""
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
        return "closed", b""
    except TimeoutError:
        return "timeout", b""
    if not answer:
        return "closed", b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split()[1].decode(), body


async def repeat(
    seconds: float, clients: int, one: Callable[[int], Awaitable[str]], outcome: Outcome
) -> None:
    """`clients` loops calling `one(client index)` until `seconds` have passed."""
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        while time.monotonic() < deadline:
            outcome.statuses[await one(index)] += 1

    await asyncio.gather(*(client(index) for index in range(clients)))


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

BOUNDARY = "abuse-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(data: bytes, fields: dict[str, str] | None = None) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def canvas_png() -> bytes:
    """A 7 drawn on a 280x280 transparent canvas, as the web page uploads it."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(70, 60), (210, 60), (120, 230)], fill=(0, 0, 0, 255), width=18)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def noisy_png(target_bytes: int) -> bytes:
    """A greyscale PNG of random pixels of about `target_bytes` (noise does not compress)."""
    side = int(target_bytes**0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def flat_json_array(total_bytes: int) -> bytes:
    """`[0,0,...]` of about `total_bytes`: two bytes an element."""
    return b"[" + b"0," * (total_bytes // 2 - 1) + b"0]"


# -- the attacks ------------------------------------------------------------------------------

Attack = Callable[[RunningServer, Outcome], Awaitable[None]]


async def slow_readers(server: RunningServer, outcome: Outcome) -> None:
    """Connections that pipeline many requests for a large answer and never read."""
    count = SLOW_READERS_PER_PROCESS * server_processes(server)
    request = request_bytes("GET", "/openapi.json", close=False) * SLOW_READER_PIPELINE
    started = time.monotonic()
    closed_after: list[float] = []

    async def one(index: int) -> None:
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, local_addr=(ATTACKER_ADDRESS, 0)
            )
        except OSError:
            outcome.statuses["refused"] += 1
            return
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(request)
        # Never read: wait for the server to close (EOF shows only once the buffered answers
        # are read, so poll the socket's state instead of reading it).
        deadline = started + SLOW_READER_HOLD_S
        while time.monotonic() < deadline:
            if writer.transport.is_closing() or _peer_closed(sock):
                closed_after.append(time.monotonic() - started)
                outcome.statuses["closed by server"] += 1
                break
            await asyncio.sleep(0.5)
        else:
            outcome.statuses["held to the end"] += 1
            # Leave as a client does: end the request stream, then go.
            writer.write_eof()
            await asyncio.sleep(1.0)
        writer.transport.abort()

    await asyncio.gather(*(one(index) for index in range(count)))
    if closed_after:
        outcome.notes.append(f"server closed {len(closed_after)} by {max(closed_after):.1f} s")


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the peer has closed or reset the connection (without consuming data)."""
    try:
        tcp_info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except OSError:
        return True
    return tcp_info[0] != 1  # TCP_ESTABLISHED


def _upload_attack(build: Callable[[], bytes], clients: int) -> Attack:
    async def attack(server: RunningServer, outcome: Outcome) -> None:
        request = request_bytes("POST", "/digit", build(), {"Content-Type": "image/png"})

        async def one(index: int) -> str:
            return (await exchange(server.port, request))[0]

        await repeat(ATTACK_S, clients, one, outcome)

    return attack


async def inline_bombs(server: RunningServer, outcome: Outcome) -> None:
    png = request_bytes(
        "POST",
        "/digit",
        hostile_files.png_with_iccp_chunks(64 * 1024),
        {"Content-Type": "image/png"},
    )
    jpeg = request_bytes(
        "POST",
        "/digit",
        hostile_files.jpeg_with_empty_scans(64 * 1024, side=280),
        {"Content-Type": "image/jpeg"},
    )

    async def one(index: int) -> str:
        return (await exchange(server.port, png if index % 2 else jpeg))[0]

    outcome.statuses = await times(200, 8, one)


async def json_arrays(server: RunningServer, outcome: Outcome) -> None:
    array = flat_json_array(9_800_000)
    bodies = [
        ("/v1/models/digit:predict", b'{"instances": ' + array + b"}"),
        (
            "/v2/models/digit/infer",
            b'{"inputs": [{"name": "image", "shape": [4900000], "datatype": "FP32", "data": '
            + array
            + b"}]}",
        ),
        ("/mpg", array),
    ]
    requests = [
        request_bytes("POST", path, body, {"Content-Type": "application/json"})
        for path, body in bodies
    ]

    async def one(index: int) -> str:
        return (await exchange(server.port, requests[index % 3]))[0]

    outcome.statuses = await times(20, 4, one)


FEEDBACK_ADDRESSES = [f"127.0.1.{n}" for n in range(1, 17)]
EVIL_ORIGIN = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


async def feedback_flood(server: RunningServer, outcome: Outcome) -> None:
    """Sixteen addresses storing 2 MiB originals as fast as they are let, and a cross-site page
    doing the same through a visitor's browser."""
    image = noisy_png(2 * 1024 * 1024 - 4096)
    body = multipart(image, {"label": "7"})
    request = request_bytes("POST", "/digit/feedback", body, {"Content-Type": MULTIPART})
    cross_site = request_bytes(
        "POST", "/digit/feedback", body, {"Content-Type": MULTIPART, **EVIL_ORIGIN}
    )
    addresses = [*FEEDBACK_ADDRESSES, "127.0.2.1"]

    async def one(index: int) -> str:
        if index == len(addresses) - 1:
            status, _ = await exchange(server.port, cross_site, addresses[index])
            return f"cross-site {status}"
        return (await exchange(server.port, request, addresses[index]))[0]

    await repeat(ATTACK_S * 2, len(addresses), one, outcome)


async def sample_listing(server: RunningServer, outcome: Outcome) -> None:
    """An administrator's page of 500 samples, ten times (after feedback-flood stored them)."""
    request = request_bytes("GET", "/samples?limit=500")
    sizes = []
    for _ in range(10):
        status, body = await exchange(server.port, request, "127.0.0.1")
        outcome.statuses[status] += 1
        sizes.append(len(body))
    outcome.notes.append(f"answers of {max(sizes) / 1024:.0f} KiB")


async def host_headers(server: RunningServer, outcome: Outcome) -> None:
    """Duplicate and malformed Host headers, one of them on an admin call from another site."""
    json_type = {"Content-Type": "application/json"}
    pin = b'{"version": 1}'
    duplicate = (
        b"PUT /models/digit/served-version HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n"
        b"Origin: http://evil.example\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(pin)}\r\nConnection: close\r\n\r\n".encode()
        + pin
    )
    requests = {
        "duplicate Host, admin PUT": duplicate,
        **{
            f"Host: {name}": request_bytes("GET", "/models", host=name)
            for name in ("localhost:8200@evil.com", "localhost:evil", "[::1]evil", "localhost:")
        },
        "no Host": request_bytes("PUT", "/models/digit/served-version", pin, json_type, host=None),
    }
    for label, request in requests.items():
        status, _ = await exchange(server.port, request, "127.0.0.1")
        outcome.statuses[f"{label}: {status}"] += 1
    # Leave the served version unpinned for the attacks after this one.
    await exchange(
        server.port, request_bytes("DELETE", "/models/digit/served-version"), "127.0.0.1"
    )


HUNGRY_JOB = {
    "model": "digit",
    "hyperparameters": {"conv_filters": [256, 256, 256], "batch_size": 4096, "epochs": 1},
    "promote": "never",
}
"""A job that fits the time budget but needs gigabytes of memory for one training step."""


async def hungry_job(server: RunningServer, outcome: Outcome) -> None:
    body = json.dumps(HUNGRY_JOB).encode()
    request = request_bytes("POST", "/jobs", body, {"Content-Type": "application/json"})
    status, answer = await exchange(server.port, request, "127.0.0.1")
    outcome.statuses[status] += 1
    if status == "202":
        job = json.loads(answer)["id"]
        await exchange(server.port, request_bytes("DELETE", f"/jobs/{job}"), "127.0.0.1")
    else:
        outcome.notes.append(json.loads(answer).get("error", "")[:200])


ATTACKS: dict[str, tuple[str, Attack]] = {
    "png-metadata": (
        "2 clients each sending a 280x280 PNG padded to 9.4 MB with iCCP chunks",
        _upload_attack(lambda: hostile_files.png_with_iccp_chunks(9_400_000), 2),
    ),
    "jpeg-scans": (
        "2 clients each sending a 2 MB progressive 1000x1000 JPEG of about 170,000 empty scans",
        _upload_attack(lambda: hostile_files.jpeg_with_empty_scans(2_000_000), 2),
    ),
    "png-idat": (
        "2 clients each sending a 280x280 PNG padded to 9.4 MB with empty IDAT chunks",
        _upload_attack(lambda: hostile_files.png_with_empty_idat_chunks(9_400_000), 2),
    ),
    "inline-bombs": (
        "200 uploads of 64 KB (iCCP PNG, empty-scan JPEG, both 280x280), 8 at a time",
        inline_bombs,
    ),
    "json-arrays": (
        "20 flat 9.8 MB JSON arrays to TF Serving, v2 and /mpg, 4 at a time",
        json_arrays,
    ),
    "feedback-flood": (
        f"{len(FEEDBACK_ADDRESSES)} addresses storing 2 MiB feedback originals as fast as allowed, "
        "and a cross-site page doing the same",
        feedback_flood,
    ),
    "sample-listing": ("GET /samples?limit=500, 10 times, after the flood", sample_listing),
    "host-headers": (
        "duplicate Host on an admin PUT from another origin; malformed Host ports",
        host_headers,
    ),
    "hungry-job": ("a digit job of 256-filter convolutions at batch 4,096", hungry_job),
    "slow-readers": (
        f"{SLOW_READERS_PER_PROCESS:,} connections per process, each pipelining "
        f"{SLOW_READER_PIPELINE} GET /openapi.json and never reading",
        slow_readers,
    ),
}


# -- measuring --------------------------------------------------------------------------------


def server_processes(server: RunningServer) -> int:
    return int(server.spec.env.get("PERCEPTRON_WORKERS", "1"))


def probe(
    port: int,
    request: bytes,
    interval: float,
    ready: Event,
    stop: Event,
    answers: Queue[list[tuple[str, float]]],
) -> None:
    """Sends `request` from HONEST_ADDRESS on a fresh blocking connection every `interval`
    until `stop`, timing each answer; in its own process, as an independent client would."""
    timed: list[tuple[str, float]] = []
    while not stop.is_set():
        started = time.monotonic()
        status = "closed"
        try:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=30, source_address=(HONEST_ADDRESS, 0)
            ) as sock:
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
        stop.wait(interval)
    answers.put(timed)


def folder_mib(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def log_problems(text: str) -> tuple[int, int]:
    """(500 answers, unhandled-error tracebacks) in a stretch of the server's log."""
    answers = len(re.findall(r'"status": 500\b', text))
    tracebacks = text.count("Traceback (most recent call last)")
    return answers, tracebacks


async def sample_memory(pid: int, outcome: Outcome, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rss = procstat.memory(pid).rss_mib
        outcome.peak_rss_over_idle_mib = max(
            outcome.peak_rss_over_idle_mib, rss - outcome.idle_rss_mib
        )
        await asyncio.sleep(0.2)


async def run_attack(server: RunningServer, state_dir: Path, name: str) -> Outcome:
    description, attack = ATTACKS[name]
    outcome = Outcome(name, description)
    await asyncio.to_thread(procstat.wait_idle, server.pid)
    outcome.idle_rss_mib = procstat.memory(server.pid).rss_mib
    disk_before = folder_mib(state_dir)
    log_offset = server.log_path.stat().st_size
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    probes = []
    upload = canvas_png()
    for request, interval in (
        (request_bytes("GET", "/healthz"), HEALTHZ_INTERVAL_S),
        (
            request_bytes("POST", "/digit", upload, {"Content-Type": "image/png"}),
            UPLOAD_INTERVAL_S,
        ),
    ):
        ready, answers = spawn.Event(), spawn.Queue()
        process = spawn.Process(
            target=probe, args=(server.port, request, interval, ready, stop, answers), daemon=True
        )
        process.start()
        probes.append((process, ready, answers))
    for _, ready, _ in probes:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("a probe did not start")
    sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(server.pid, outcome, sampling))
    try:
        await attack(server, outcome)
    finally:
        stop.set()
        results = [await asyncio.to_thread(answers.get, True, 60) for _, _, answers in probes]
        for process, _, _ in probes:
            process.join()
        outcome.healthz, outcome.honest = results
        await asyncio.sleep(SETTLE_S)
        sampling.set()
        await sampler
    outcome.settled_rss_over_idle_mib = procstat.memory(server.pid).rss_mib - outcome.idle_rss_mib
    outcome.disk_growth_mib = folder_mib(state_dir) - disk_before
    with server.log_path.open("rb") as log:
        log.seek(log_offset)
        outcome.log_500s, outcome.log_tracebacks = log_problems(log.read().decode(errors="replace"))
    return outcome


def run_availability(
    models_dir: Path, out: Path, names: list[str], processes: list[int], env: dict[str, str]
) -> dict[str, Any]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attackers' sockets
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for count in processes:
        with tempfile.TemporaryDirectory(prefix="abuse-state-") as folder:
            state_dir = Path(folder)
            spec = ServerSpec(
                "ours",
                models_dir,
                env={
                    "PERCEPTRON_WORKERS": str(count),
                    "PERCEPTRON_STATE_DIR": str(state_dir),
                    **env,
                },
            )
            with running(spec, out / f"workers-{count}") as server:
                outcomes = []
                for name in names:
                    outcome = asyncio.run(run_attack(server, state_dir, name))
                    print(f"[{count} process(es)] {json.dumps(outcome.summary())}", flush=True)
                    outcomes.append(outcome.summary())
            runs.append({"processes": count, "outcomes": outcomes})
    report = {
        "machine": machine.summary_line(machine.describe()),
        "load_average": procstat.load_average(),
        "env": env,
        "runs": runs,
    }
    (out / "availability.json").write_text(json.dumps(report, indent=2))
    return report


def met(outcome: dict[str, Any]) -> bool:
    return (
        outcome["healthz_max_s"] <= HEALTHZ_TARGET_S
        and outcome["honest_max_s"] <= UPLOAD_TARGET_S
        and not outcome["healthz_failed"]
        and not outcome["honest_failed"]
        and not outcome["log_500s"]
        and not outcome["log_tracebacks"]
        and outcome["settled_rss_over_idle_mib"] <= RSS_TARGET_MIB
    )


def render_markdown(report: dict[str, Any], command: str) -> str:
    lines = [
        f"Command: `{command}` (loopback; {report['machine']}; load average "
        f"{report['load_average'][0]:.1f} at the end, the machine shared with other work).",
        "",
        f"Targets: /healthz <= {HEALTHZ_TARGET_S} s and an honest upload <= {UPLOAD_TARGET_S} s "
        "at worst, neither refused; no 500 and no traceback in the log; resident memory within "
        f"{RSS_TARGET_MIB:.0f} MB of its level before the attack {SETTLE_S:.0f} s after it.",
        "",
    ]
    for run in report["runs"]:
        lines += [
            f"**{run['processes']} worker process(es)**",
            "",
            "| attack | attacker got | /healthz median / max (s) | upload median / max (s) "
            "| refused probes | 500s / tracebacks | RSS peak / after (MiB over idle) "
            "| disk (MiB) | met |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for o in run["outcomes"]:
            refused = {
                **o["healthz_failed"],
                **{f"upload {k}": v for k, v in o["honest_failed"].items()},
            }
            got = ", ".join(f"{k}: {v}" for k, v in sorted(o["statuses"].items()))
            if o["notes"]:
                got += " (" + "; ".join(o["notes"]) + ")"
            lines.append(
                f"| {o['name']}: {o['description']} | {got} | {o['healthz_median_s']:.3f} / "
                f"{o['healthz_max_s']:.3f} | {o['honest_median_s']:.3f} / {o['honest_max_s']:.3f} "
                f"| {', '.join(f'{k}: {v}' for k, v in refused.items()) or 0} "
                f"| {o['log_500s']} / {o['log_tracebacks']} "
                f"| {o['peak_rss_over_idle_mib']} / {o['settled_rss_over_idle_mib']} "
                f"| {o['disk_growth_mib']:.0f} | {'yes' if met(o) else '**no**'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse_availability", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--only", default=",".join(ATTACKS), help="attacks: " + ",".join(ATTACKS))
    parser.add_argument("--processes", default="1,2", help="worker process counts to run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE settings for the server"
    )
    options = parser.parse_args(argv)
    names = [name for name in options.only.split(",") if name]
    unknown = set(names) - set(ATTACKS)
    if unknown:
        raise SystemExit(f"unknown attacks {sorted(unknown)}; known: {list(ATTACKS)}")
    env = dict(item.split("=", 1) for item in options.env)
    report = run_availability(
        options.models_dir,
        options.out / f"availability-{time.strftime('%Y%m%d-%H%M%S')}",
        names,
        [int(n) for n in options.processes.split(",")],
        env,
    )
    print(render_markdown(report, "python -m bench.abuse_availability " + " ".join(argv or [])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
