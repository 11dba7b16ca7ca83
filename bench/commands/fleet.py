"""Several replicas behind the proxy: throughput, failures when one dies, a job across restarts.

The production proxy (Debian's nginx on deploy/proxy/nginx.conf, TLS) in front of two API
replicas (one process each), two training workers, Redis and PostgreSQL, all on this machine
(bench/fleet_servers.py). In order:

1. throughput of one API process reached directly, then of the two replicas through the proxy,
   with the same load (wrk, one car to /mpg and one digit upload to /digit);
2. failed requests through the proxy while one replica is killed (SIGKILL), and while one is
   restarted (SIGTERM, then started again), under that load. Target: no failed prediction;
3. a training job submitted through the proxy while each replica in turn is restarted: it
   must succeed, and every poll of its status through the proxy must be answered.

The proxy's per-address request rate (50 a second) is lifted for the run, as wrk is one
address; every other limit is the production file's. On 2 shared cores the replicas, nginx,
the workers and wrk compete for the same CPUs: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import options
from bench.fleet_servers import (
    Process,
    free_port,
    start_api,
    start_postgres,
    start_proxy,
    start_redis,
    start_worker,
    wait_ready,
)
from bench.load import LoadResult, command, parse_wrk
from bench.payloads import Payload, build
from bench.results import Section, table

PROXY_ADDRESS = "127.0.0.2"
JOB = {
    "model": "digit",
    "hyperparameters": {"architecture": "mlp", "epochs": 16, "hidden_units": [128]},
    "promote": "never",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    options.load(parser, seconds=20, warmup=3, concurrency=(16,))
    parser.add_argument(
        "--event-after", type=float, default=6.0,
        help="seconds into a failure run before the replica is killed or restarted (default 6)",
    )  # fmt: skip


@dataclass
class Replica:
    port: int
    folder: Path
    settings: dict[str, str]
    process: Process | None = None

    def start(self) -> None:
        self.process = start_api(self.folder, self.port, **self.settings)

    def wait(self) -> None:
        assert self.process is not None
        wait_ready(self.process, self.port)


def run(args: argparse.Namespace) -> list[Section]:
    load = options.Load.of(args)
    run_dir: Path = args.run_dir
    payloads = build(run_dir / "payloads")
    chosen = [payloads["mpg-one"], payloads["digit-mnist"]]
    models = run_dir / "models"
    shutil.copytree(args.models_dir, models)
    started: list[Process] = []
    replicas: list[Replica] = []
    proxy = None
    try:
        redis, redis_url = start_redis(run_dir / "redis", "bench-fleet")
        postgres, database_url = start_postgres(run_dir / "postgres")
        started += [redis, postgres]
        shared = {
            "models_dir": str(models),
            "redis_url": redis_url,
            "database_url": database_url,
            "trusted_proxies": PROXY_ADDRESS,
            "poll_interval_s": "2",
            **{k.removeprefix("PERCEPTRON_").lower(): v for k, v in load.env.items()},
        }
        replicas = [Replica(free_port(), run_dir / f"api-{n}", shared) for n in (1, 2)]
        for replica in replicas:
            replica.start()
            assert replica.process is not None
            started.append(replica.process)
        for replica in replicas:
            replica.wait()
        workers = [start_worker(run_dir / f"worker-{n}", **shared) for n in (1, 2)]
        started += workers
        proxy = start_proxy(
            [f"127.0.0.1:{r.port}" for r in replicas],
            bind_address=PROXY_ADDRESS,
            requests_per_second=100_000,
        )
        concurrency = load.concurrency[0]
        rows = []
        for payload in chosen:
            direct = _wrk(
                f"http://127.0.0.1:{replicas[0].port}{payload.endpoint}", payload, load, run_dir
            )
            fleet = _wrk(proxy.url(payload.endpoint), payload, load, run_dir)
            rows.append(
                [payload.name, "one process, direct", f"{direct.rps:.0f}", f"{direct.p50_ms:.1f}",
                 f"{direct.p99_ms:.1f}", str(direct.errors), "1.00"]
            )  # fmt: skip
            rows.append(
                [payload.name, "two replicas behind nginx (TLS)", f"{fleet.rps:.0f}",
                 f"{fleet.p50_ms:.1f}", f"{fleet.p99_ms:.1f}", str(fleet.errors),
                 f"{fleet.rps / direct.rps:.2f}" if direct.rps else "-"]
            )  # fmt: skip
        failures = []
        for event in ("killed (SIGKILL)", "restarted (SIGTERM, then started)"):
            for payload in chosen:
                result = _with_event(
                    proxy.url(payload.endpoint),
                    payload,
                    load,
                    run_dir,
                    replicas[1],
                    event,
                    args.event_after,
                )
                failures.append(
                    [payload.name, f"replica {event}", str(result.requests), str(result.errors)]
                )
                replicas[1].wait()
        job_row = _job_across_restarts(proxy, replicas)
    finally:
        if proxy is not None:
            proxy.stop(keep_logs_in=run_dir / "proxy")
        for replica in replicas:  # the processes restarted during the run included
            if replica.process is not None:
                replica.process.stop()
        for process in reversed(started):
            process.stop()
    throughput = table(
        ["payload", "served by", "req/s", "p50 ms", "p99 ms", "errors", "vs one process"], rows
    )
    failed = table(["payload", "during the run, one replica", "requests", "failed"], failures)
    job = table(
        ["job", "replica restarts while it ran", "polls", "polls failed", "why", "outcome"],
        [job_row],
    )
    body = (
        f"{concurrency} wrk connections for {load.seconds:g} s per row (after {load.warmup_s:g} s "
        "of warm-up), the proxy's per-address request rate lifted.\n\n"
        f"{throughput}\n\nFailures while a replica dies {args.event_after:g} s into a "
        f"{load.seconds:g} s run through the proxy (predictions are resent to the other "
        "replica: `proxy_next_upstream ... non_idempotent` on the prediction routes):\n\n"
        f"{failed}\n\nA training job ({JOB['model']} {JOB['hyperparameters']}) submitted and "
        "followed through the proxy while each replica is restarted in turn:\n\n"
        f"{job}"
    )
    return [Section("fleet", body)]


def _wrk(url: str, payload: Payload, load: options.Load, out: Path) -> LoadResult:
    if load.warmup_s > 0:
        _run(command(url, payload, load.concurrency[0], load.warmup_s, out))
    return parse_wrk(_run(command(url, payload, load.concurrency[0], load.seconds, out)))


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout


def _with_event(
    url: str,
    payload: Payload,
    load: options.Load,
    out: Path,
    replica: Replica,
    event: str,
    after: float,
) -> LoadResult:
    """One measured run through the proxy during which `replica` is killed or restarted."""
    wrk = subprocess.Popen(
        command(url, payload, load.concurrency[0], load.seconds, out),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    assert replica.process is not None
    replica.process.stop(signal.SIGKILL if event.startswith("killed") else signal.SIGTERM)
    replica.start()
    output, _ = wrk.communicate(timeout=load.seconds + 120)
    return parse_wrk(output)


def _job_across_restarts(proxy, replicas: list[Replica]) -> list[str]:  # type: ignore[no-untyped-def]
    """Submits JOB through the proxy, restarts each replica in turn while polling the job
    through the proxy every half second, and waits for the job to end."""
    context = httpx.create_ssl_context(verify=str(proxy.certificate))
    polls = failed = 0
    failures: Counter[str] = Counter()
    restarts_while_running = 0
    with httpx.Client(verify=context, timeout=30) as client:
        answer = client.post(proxy.url("/jobs"), json=JOB)
        answer.raise_for_status()
        job_id = answer.json()["id"]
        status = {"status": "queued"}
        stop = threading.Event()

        def poll() -> None:
            nonlocal polls, failed, status
            with httpx.Client(verify=context, timeout=30) as poller:
                while not stop.is_set():
                    polls += 1
                    try:
                        reply = poller.get(proxy.url(f"/jobs/{job_id}"))
                        if reply.status_code == 200:
                            status = reply.json()
                        else:
                            failed += 1
                            failures[f"{reply.status_code} {reply.text[:80]}"] += 1
                    except httpx.TransportError as error:
                        failed += 1
                        failures[type(error).__name__] += 1
                    time.sleep(0.5)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            deadline = time.monotonic() + 300
            while status["status"] == "queued" and time.monotonic() < deadline:
                time.sleep(0.5)
            for replica in replicas:
                assert replica.process is not None
                running_before = status["status"] == "running"
                replica.process.stop(signal.SIGTERM)
                replica.start()
                replica.wait()
                if running_before and status["status"] == "running":
                    restarts_while_running += 1
            deadline = time.monotonic() + 900
            while status["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            stop.set()
            poller.join(timeout=60)
    name = f"{JOB['model']}, {JOB['hyperparameters']['epochs']} epochs"
    why = "; ".join(f"{count} x {kind}" for kind, count in failures.most_common()) or "-"
    return [
        name,
        f"{restarts_while_running} of {len(replicas)}",
        str(polls),
        str(failed),
        why,
        status["status"],
    ]
