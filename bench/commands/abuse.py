"""Attacks against a live server on loopback: is a client that is not the attacker still served?

Each attack of `bench.attacks` runs against one server with one worker process and one with
two, while two probes, each in its own process and from its own loopback address, play honest
clients: `GET /healthz` every 0.1 s and a 280x280 canvas PNG to /digit every 0.25 s, each on a
fresh connection. Per attack: what the attacker got, both probes' median and worst times and
refusals, 500s and unhandled-error tracebacks in the server's log, resident memory (all the
serving processes) at its peak and 30 s after the attack, open descriptors, the state folder's
growth, and for connection attacks how soon the server closed the attacker's sockets.

Targets: /healthz <= 0.5 s and an honest upload <= 1 s at worst, neither refused; no 500 and
no traceback; resident memory within 100 MB of its level before the attack 30 s after it;
attacking sockets closed within 20 s; disk growth within the feedback quota (the run sets
PERCEPTRON_FEEDBACK_MAX_BYTES to 200 MiB). Writes the `abuse` section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import resource
import socket
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np

from bench import attacks, options, procstat
from bench.attacks import ATTACKS, Outcome, Target, canvas_png, request_bytes, upload
from bench.results import Section, table
from bench.servers import RunningServer, ServerSpec, running

HONEST = "127.0.0.9"
HEALTHZ_EVERY_S = 0.1
UPLOAD_EVERY_S = 0.25
SETTLE_S = 30.0
"""Resident memory is read this long after an attack ends."""
HEALTHZ_TARGET_S = 0.5
UPLOAD_TARGET_S = 1.0
RSS_TARGET_MIB = 100.0
FEEDBACK_QUOTA_MIB = 200
"""The feedback store's quota for the run, small enough for the flood to reach."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    parser.add_argument(
        "--only", type=options.csv, default=tuple(ATTACKS), help="attacks: " + ",".join(ATTACKS)
    )
    parser.add_argument(
        "--processes", type=options.ints, default=(1, 2), help="worker process counts (1,2)"
    )
    parser.add_argument(
        "--set",
        type=options.setting,
        action="append",
        default=[],
        metavar="PERCEPTRON_X=VALUE",
        help="a setting of the server under attack (repeatable), to compare against the defaults",
    )


def run(args: argparse.Namespace) -> list[Section]:
    unknown = set(args.only) - set(ATTACKS)
    if unknown:
        raise SystemExit(f"unknown attacks {sorted(unknown)}; known: {list(ATTACKS)}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attackers' sockets
    runs = []
    for processes in args.processes:
        state = args.run_dir / f"state-{processes}"
        state.mkdir(parents=True, exist_ok=True)
        env = {
            "PERCEPTRON_WORKERS": str(processes),
            "PERCEPTRON_STATE_DIR": str(state),
            "PERCEPTRON_FEEDBACK_MAX_BYTES": str(FEEDBACK_QUOTA_MIB * 2**20),
            **dict(args.set),
        }
        spec = ServerSpec("ours", args.models_dir, env=env)
        with running(spec, args.run_dir / f"workers-{processes}") as server:
            outcomes = []
            for name in args.only:
                outcome = asyncio.run(measure(server, Target(server.port, processes), state, name))
                print(f"[{processes}] {json.dumps(outcome)}", flush=True)
                outcomes.append(outcome)
        runs.append({"processes": processes, "outcomes": outcomes})
    (args.run_dir / "abuse.json").write_text(json.dumps(runs, indent=2))
    return [Section("abuse", render(runs))]


def probe(
    port: int, request: bytes, every_s: float, ready: Event, stop: Event, answers: Queue[Any]
) -> None:
    """Sends `request` from HONEST on a fresh connection every `every_s` until `stop`; in its
    own process, as an independent client would (inside the attacker's event loop a probe would
    also wait for the attacker's own sockets)."""
    timed: list[tuple[str, float]] = []
    while not stop.is_set():
        started = time.monotonic()
        status = "closed"
        try:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=30, source_address=(HONEST, 0)
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
        stop.wait(every_s)
    answers.put(timed)


async def measure(server: RunningServer, target: Target, state: Path, name: str) -> dict[str, Any]:
    description, attack = ATTACKS[name]
    outcome = Outcome(name, description)
    await asyncio.to_thread(procstat.wait_idle, server.pid)
    idle = procstat.memory(server.pid).rss_mib
    disk_before = _folder_mib(state)
    log_start = server.log_path.stat().st_size
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    probes = []
    for request, every_s in (
        (request_bytes("GET", "/healthz"), HEALTHZ_EVERY_S),
        (upload(canvas_png()), UPLOAD_EVERY_S),
    ):
        ready, answers = spawn.Event(), spawn.Queue()
        process = spawn.Process(
            target=probe, args=(server.port, request, every_s, ready, stop, answers), daemon=True
        )
        process.start()
        probes.append((process, ready, answers))
    for _, ready, _ in probes:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("a probe did not start")
    peaks = {"rss": idle, "fds": 0.0}
    sampling = asyncio.Event()
    sampler = asyncio.create_task(_sample(server.pid, peaks, sampling))
    try:
        await attack(target, outcome)
    finally:
        stop.set()
        timed = [await asyncio.to_thread(answers.get, True, 60) for _, _, answers in probes]
        for process, _, _ in probes:
            process.join()
        await asyncio.sleep(SETTLE_S)
        sampling.set()
        await sampler
    with server.log_path.open("rb") as log:
        log.seek(log_start)
        text = log.read().decode(errors="replace")
    return {
        "name": name,
        "description": description,
        "statuses": dict(outcome.statuses),
        "notes": outcome.notes,
        "healthz": _times(timed[0]),
        "upload": _times(timed[1]),
        "idle_rss_mib": round(idle),
        "peak_rss_over_idle_mib": round(peaks["rss"] - idle),
        "settled_rss_over_idle_mib": round(procstat.memory(server.pid).rss_mib - idle),
        "peak_fds": int(peaks["fds"]),
        "disk_growth_mib": round(_folder_mib(state) - disk_before, 1),
        "log_500s": len(re.findall(r'"status": 500\b', text)),
        "log_tracebacks": text.count("Traceback (most recent call last)"),
        "close_max_s": outcome.close_max_s,
        "open_after_s": outcome.open_after_s,
    }


async def _sample(pid: int, peaks: dict[str, float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peaks["rss"] = max(peaks["rss"], procstat.memory(pid).rss_mib)
        peaks["fds"] = max(peaks["fds"], sum(procstat.open_fds(p) for p in procstat.tree(pid)))
        await asyncio.sleep(0.2)


def _times(timed: list[tuple[str, float]]) -> dict[str, Any]:
    seconds = [s for _, s in timed] or [0.0]
    refused: dict[str, int] = {}
    for status, _ in timed:
        if status != "200":
            refused[status] = refused.get(status, 0) + 1
    return {
        "median_s": round(float(np.median(seconds)), 3),
        "max_s": round(max(seconds), 3),
        "count": len(timed),
        "refused": refused,
    }


def _folder_mib(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def met(o: dict[str, Any]) -> bool:
    """Whether an attack's outcome meets every target."""
    return (
        o["healthz"]["max_s"] <= HEALTHZ_TARGET_S
        and o["upload"]["max_s"] <= UPLOAD_TARGET_S
        and not o["healthz"]["refused"]
        and not o["upload"]["refused"]
        and not o["log_500s"]
        and not o["log_tracebacks"]
        and o["settled_rss_over_idle_mib"] <= RSS_TARGET_MIB
        and o["disk_growth_mib"] <= FEEDBACK_QUOTA_MIB
        and (o["close_max_s"] is None or o["close_max_s"] <= attacks.CLOSE_TARGET_S)
        and not o["open_after_s"]
    )


def render(runs: list[dict[str, Any]]) -> str:
    columns = ("attack", "attacker got", "/healthz median / max (s)", "upload median / max (s)",
               "refused probes", "500s / tracebacks", "RSS peak / after 30 s (MiB over idle)",
               "peak fds", "disk (MiB)", "slowest close (s)", "met")  # fmt: skip
    parts = [
        "The honest clients run in their own processes from 127.0.0.9; the attackers from "
        "other loopback addresses. Targets: /healthz <= "
        f"{HEALTHZ_TARGET_S} s and an honest upload <= {UPLOAD_TARGET_S} s at worst, neither "
        "refused; no 500 and no traceback in the log; resident memory within "
        f"{RSS_TARGET_MIB:.0f} MB of its level before the attack {SETTLE_S:.0f} s after it; "
        f"attacking sockets closed within {attacks.CLOSE_TARGET_S:.0f} s; disk growth within "
        f"the feedback quota ({FEEDBACK_QUOTA_MIB} MiB in this run).",
    ]
    for run in runs:
        rows = []
        for o in run["outcomes"]:
            refused = {**o["healthz"]["refused"]} | {
                f"upload {k}": v for k, v in o["upload"]["refused"].items()
            }
            got = _counts(o["statuses"]) + (f" ({'; '.join(o['notes'])})" if o["notes"] else "")
            close = "" if o["close_max_s"] is None else f"{o['close_max_s']:.1f}"
            close += f" ({o['open_after_s']} still open)" if o["open_after_s"] else ""
            rows.append(
                [f"{o['name']}: {o['description']}", got,
                 f"{o['healthz']['median_s']:.3f} / {o['healthz']['max_s']:.3f}",
                 f"{o['upload']['median_s']:.3f} / {o['upload']['max_s']:.3f}",
                 _counts(refused) or "0", f"{o['log_500s']} / {o['log_tracebacks']}",
                 f"{o['peak_rss_over_idle_mib']} / {o['settled_rss_over_idle_mib']}",
                 str(o["peak_fds"]), f"{o['disk_growth_mib']:.0f}", close,
                 "yes" if met(o) else "**no**"]
            )  # fmt: skip
        parts += ["", f"**{run['processes']} worker process(es)**", "", table(columns, rows)]
    return "\n".join(parts)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items()))
