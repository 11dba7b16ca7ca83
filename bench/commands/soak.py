"""Minutes of mixed traffic, a training job and version swaps: nothing may fail or leak.

Concurrency 64 on loopback against `python -m service run` (API and training worker), on a
private copy of the served models and a private state folder, with an admin token of its own.
After a warm-up (not counted), the measured run starts; during it:

* at 10%: `POST /jobs` trains a small mpg model (promote=always), which the service then
  swaps in when the worker exports it;
* at 30%: a new digit version folder is copied in (written beside, renamed into place), which
  the service swaps in on its next scan;
* at 60%: `PUT /models/digit/served-version` pins the digit model back to version 1.

Reported: requests, errors (target 0), latency percentiles per kind, RSS of the API process at
the start (after the warm-up) and the end (growth under 10%), and open file descriptors. Writes
the `soak` section and, with the latest `serve` run, the `targets` section (its memory target
is this RSS growth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import options, procstat, serve_report, soak_report
from bench.mixed_load import Kind, run_traffic
from bench.payloads import build
from bench.results import Section
from bench.servers import ServerSpec, running
from bench.soak_events import Events, admin_client, served_version

CONCURRENCY = 64
SETTLE_S = 2.0
"""Pause after traffic before sampling, so both samples see the server idle with the clients'
connections closed: open descriptors then compare like with like."""
JOB_GRACE_S = 300.0
"""How long after the traffic the soak still waits for its training job to settle."""
SAMPLE_EVERY_S = 5.0
MIX = (("digit", 0.45), ("mpg", 0.45), ("job-poll", 0.10))
"""Weights of the request kinds: uploads and cars alike, a poll now and then."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    parser.add_argument("--minutes", type=float, default=5.0, help="measured run (default 5)")
    parser.add_argument(
        "--warmup", type=float, default=20.0, help="seconds of traffic not counted (default 20)"
    )
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="clients (64)")
    parser.add_argument("--job-epochs", type=int, default=30, help="the mpg job's epochs (30)")


def run(args: argparse.Namespace) -> list[Section]:
    report = run_soak(args)
    sections = [Section("soak", soak_report.render(report))]
    serve = serve_report.latest(args.out, "serve-*", "results.json")
    if serve is not None and not serve["meta"].get("quick"):
        targets = serve_report.render_targets(serve, report)
        sections.append(Section("targets", targets, stamped=False))
    return sections


def private_models(source: Path, target: Path) -> None:
    """Copies the served version of each model into `target` as version 1."""
    from training import versions

    for name in ("digit", "mpg"):
        version = versions.served_version(source, name)
        if version is None:
            raise SystemExit(f"no servable {name} version in {source}; train one first")
        shutil.copytree(versions.version_dir(source, name, version), target / name / "1")


def _kinds(payloads: dict[str, Any], events: Events) -> list[Kind]:
    # The bodies the serve benchmark sends (one canvas upload, one car), read once.
    digit, car = payloads["digit-canvas"], payloads["mpg-one"]
    upload, car_json = digit.path.read_bytes(), car.path.read_bytes()

    def poll_job() -> tuple[str, str, bytes, str | None]:
        # Before the job exists, the poll is the job list, as a dashboard would show it.
        path = "/jobs?limit=5" if events.job_id is None else f"/jobs/{events.job_id}"
        return "GET", path, b"", None

    prepared = {
        "digit": lambda: ("POST", "/digit", upload, digit.content_type),
        "mpg": lambda: ("POST", "/mpg", car_json, car.content_type),
        "job-poll": poll_job,
    }
    return [Kind(name, weight, prepared[name]) for name, weight in MIX]


def _is_training_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return command[-3:-1] == [b"service", b"worker"]


def _processes(api_pid: int) -> tuple[list[int], list[int]]:
    """The API's processes (the one `run` started and its serving processes) and the training
    worker's process tree (the Huey consumer and the process it trains in, replaced after every
    job)."""
    children = procstat.children(api_pid)
    workers = [pid for pid in children if _is_training_worker(pid)]
    api = [api_pid] + [
        member for pid in children if pid not in workers for member in procstat.tree(pid)
    ]
    return api, procstat.tree(workers[0]) if workers else []


def _api_fd_targets(api_pid: int) -> list[str]:
    """What the API's processes hold open, all together."""
    api, _ = _processes(api_pid)
    return sorted(target for pid in api for target in procstat.fd_targets(pid))


def _sample(api_pid: int) -> dict[str, Any]:
    """RSS and open fds of the API's processes, summed, and of the training worker's tree."""
    api, tree = _processes(api_pid)
    return {
        "api_rss_mib": round(sum(map(procstat.process_rss_mib, api)), 1),
        "api_fds": sum(map(procstat.open_fds, api)),
        "worker_rss_mib": round(sum(map(procstat.process_rss_mib, tree)), 1) if tree else None,
        "worker_fds": sum(map(procstat.open_fds, tree)) if tree else None,
    }


def _fd_change(before: list[str], after: list[str]) -> dict[str, int]:
    """Descriptors opened (+) or closed (-) between two samples, by what they point at."""
    change = Counter(after)
    change.subtract(Counter(before))
    return {target: n for target, n in sorted(change.items()) if n}


async def _sampler(api_pid: int, samples: list[dict[str, Any]], stop: asyncio.Event) -> None:
    began = time.monotonic()
    while True:
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
            return
        except TimeoutError:
            samples.append({"t_s": round(time.monotonic() - began, 1), **_sample(api_pid)})


async def _soak(
    args: argparse.Namespace,
    port: int,
    api_pid: int,
    models: Path,
    payloads: dict[str, Any],
    token: str,
) -> dict[str, Any]:
    duration = args.minutes * 60
    base_url = f"http://127.0.0.1:{port}"
    async with admin_client(base_url, token) as admin:
        events = Events(admin, models, duration, job_epochs=args.job_epochs)
        kinds = _kinds(payloads, events)
        ready = _sample(api_pid)
        print(f"warming up for {args.warmup:.0f} s ...", flush=True)
        warmup = await run_traffic(
            "127.0.0.1",
            port,
            kinds,
            concurrency=args.concurrency,
            seconds=args.warmup,
            seed=1,
        )
        await asyncio.sleep(SETTLE_S)
        start, fds_start = _sample(api_pid), _api_fd_targets(api_pid)
        print(f"soaking for {duration:.0f} s at concurrency {args.concurrency} ...", flush=True)
        samples: list[dict[str, Any]] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sampler(api_pid, samples, stop))
        scheduled = asyncio.create_task(events.run())
        # CPU of both sides: the client shares the machine's cores with the service.
        client_cpu, api_cpu = time.process_time(), procstat.cpu_seconds(api_pid)
        tally = await run_traffic(
            "127.0.0.1", port, kinds, concurrency=args.concurrency, seconds=duration, seed=2
        )
        cpu = {
            "client_s": round(time.process_time() - client_cpu, 1),
            "service_s": round(procstat.cpu_seconds(api_pid) - api_cpu, 1),
        }
        await asyncio.sleep(SETTLE_S)
        end = _sample(api_pid)
        stop.set()
        await sampler
        try:
            # The job may still be training on a slow machine: give it a little longer.
            await asyncio.wait_for(scheduled, timeout=JOB_GRACE_S)
        except TimeoutError:
            events.log.append(
                {"at_s": round(duration + JOB_GRACE_S), "action": "gave up waiting for the job",
                 "answer": "-", "served_after_s": None}
            )  # fmt: skip
        health = await admin.get("/readyz")
        served = {name: await served_version(admin, name) for name in ("digit", "mpg")}
    return {
        "warmup": warmup.summary(),
        "run": tally.summary(),
        "ready": ready,
        "start": start,
        "end": end,
        "samples": samples,
        "cpu": cpu,
        "api_fd_change": _fd_change(fds_start, _api_fd_targets(api_pid)),
        "events": events.log,
        "job": events.job,
        "after": {"readyz": health.status_code, "served_versions": served},
    }


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    out = args.run_dir
    payloads = build(out / "payloads")
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bench-soak-models-") as folder:
        models = Path(folder)
        private_models(args.models_dir, models)
        env = {"PERCEPTRON_ADMIN_TOKEN": token, "PERCEPTRON_POLL_INTERVAL_S": "1"}
        spec = ServerSpec("service-run", models, env=env)
        with running(spec, out) as server:
            report = asyncio.run(_soak(args, server.port, server.pid, models, payloads, token))
        log_text = (out / "server-service-run.log").read_text(errors="replace")
    report.update(
        machine=args.machine,
        minutes=args.minutes,
        concurrency=args.concurrency,
        mix=dict(MIX),
        logged_errors=sum(1 for line in log_text.splitlines() if '"level": "ERROR"' in line),
        out=str(out),
    )
    start, end = report["start"]["api_rss_mib"], report["end"]["api_rss_mib"]
    report["api_rss_growth"] = (end - start) / start if start else None
    (out / "soak.json").write_text(json.dumps(report, indent=2))
    return report
