"""Our service against the HTTP-stack ceiling, the in-process model and BentoML, on loopback.

In one run on this machine: the in-process ceilings first (the served models' signatures and
the decode-and-preprocess of each benchmark image, in a child process), then each server in
turn, alone on the machine: started, checked with one request per payload, loaded with every
payload at each concurrency (warm-up discarded), stopped. Servers: `ours` (`python -m service
api`, one process per core), `ours-1` (one process), `bare` (the same FastAPI request parsing
answering a constant), `bentoml` (BentoML's documented composition; `make bench-venv`).
Writes the `serve` and `targets` sections; raw tool outputs, server logs and results.json go to
the run's folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import REPO, load, options, procstat, serve_report
from bench.options import Load
from bench.payloads import Payload, build
from bench.results import Section
from bench.servers import OURS, SERVER_KINDS, RunningServer, ServerSpec, child_env, running

ALL_PAYLOADS = ("digit-canvas", "digit-mnist", "digit-batch64", "mpg-one", "mpg-batch100")
QUICK_PAYLOADS = ("digit-canvas", "mpg-one")
TARGET_SERVERS = ("ours", "bare", "bentoml")
TARGET_PAYLOADS = ("digit-canvas", "mpg-one")
TARGET_CONCURRENCY = (1, serve_report.LOAD_CONCURRENCY)
"""What `--targets` measures: only the runs the targets read (about 5 minutes in all)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    options.load(parser, seconds=10, warmup=3, concurrency=(1, 8, 32, 64))
    parser.add_argument("--quick", action="store_true", help="a smoke test of a few seconds")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="only the runs the targets read: servers "
        f"{','.join(TARGET_SERVERS)}, payloads {','.join(TARGET_PAYLOADS)}, "
        f"concurrency {','.join(map(str, TARGET_CONCURRENCY))} (about 5 minutes; "
        "replaces --servers, --payloads and --concurrency)",
    )
    parser.add_argument(
        "--servers",
        type=options.csv,
        default=SERVER_KINDS,
        help=f"default {','.join(SERVER_KINDS)}",
    )
    parser.add_argument(
        "--payloads", type=options.csv, default=None, help=f"default {','.join(ALL_PAYLOADS)}"
    )


def run(args: argparse.Namespace) -> list[Section]:
    if args.quick and args.write_results:
        raise SystemExit("--quick runs are smoke tests; they are not written to RESULTS.md")
    spec = Load.of(args)
    servers: tuple[str, ...] = args.servers
    payloads: tuple[str, ...] = args.payloads or (QUICK_PAYLOADS if args.quick else ALL_PAYLOADS)
    if args.targets:
        servers, payloads = TARGET_SERVERS, TARGET_PAYLOADS
        spec = Load(spec.seconds, spec.warmup_s, TARGET_CONCURRENCY, spec.env)
    if args.quick:
        spec = Load(1, 0, spec.concurrency, spec.env)
    results = run_serve(
        args.models_dir, args.run_dir, spec, servers, payloads, 0.3 if args.quick else 3
    )
    results["meta"]["quick"] = args.quick
    (args.run_dir / "results.json").write_text(json.dumps(results, indent=2))
    if args.quick:
        return [Section("serve", serve_report.render(results))]
    soak = serve_report.latest(args.out, "soak-*", "soak.json")
    return [
        Section("serve", serve_report.render(results)),
        Section("targets", serve_report.render_targets(results, soak), stamped=False),
    ]


def run_compute(
    models_dir: Path, payloads: list[Payload], seconds: float, out: Path
) -> dict[str, Any]:
    """The in-process ceilings, from `bench.compute` in a child process."""
    images = []
    for payload in payloads:
        if payload.image is not None:
            path = out / f"{payload.name}.image"
            path.write_bytes(payload.image)
            images += ["--image", f"{payload.name}={path}"]
    result_path = out / "compute.json"
    command = [
        sys.executable, "-m", "bench.compute", "--models-dir", str(models_dir),
        "--seconds", str(seconds), "--json", str(result_path), *images,
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO, env=child_env())
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def check_answers(server: RunningServer, payloads: list[Payload]) -> dict[str, Any]:
    """One request per payload: every server must answer 2xx before it is measured."""
    answers = {}
    for payload in payloads:
        request = urllib.request.Request(
            server.url(payload.endpoint),
            data=payload.path.read_bytes(),
            headers={"Content-Type": payload.content_type},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"{server.spec.kind} answered {exc.code} to {payload.name}: {exc.read()[:500]!r}"
            ) from None
        first = body["results"][0] if isinstance(body, dict) and "results" in body else body
        answers[payload.name] = (
            {k: first[k] for k in ("digit", "probability", "mpg") if k in first}
            if isinstance(first, dict)
            else first
        )
    return answers


def measure_server(
    spec: ServerSpec, payloads: list[Payload], how: Load, out: Path
) -> dict[str, Any]:
    payloads = [payload for payload in payloads if spec.serves(payload.endpoint)]
    with running(spec, out) as server:
        started_rss = procstat.memory(server.pid).rss_mib
        answers = check_answers(server, payloads)
        runs = []
        for payload in payloads:
            for concurrency in how.concurrency:
                label = f"{spec.kind}-{payload.name}-c{concurrency}"
                print(f"  {label} ...", end="", flush=True)
                result = load.measure(
                    server.url(payload.endpoint),
                    payload,
                    concurrency=concurrency,
                    seconds=how.seconds,
                    warmup_s=how.warmup_s,
                    server_pid=server.pid,
                    out=out / "raw",
                    label=label,
                )
                run = run_record(payload, concurrency, result)
                run["rss_mib"] = round(procstat.memory(server.pid).rss_mib, 1)
                print(
                    f" {run['rps']:.0f} req/s, p50 {run['p50_ms']:.2f} ms, "
                    f"CPU {run['cpu_ms_per_request']:.2f} ms/req, errors {run['errors']}"
                )
                runs.append(run)
        memory = procstat.memory(server.pid)
    return {
        "answers": answers,
        "rss_mib_ready": round(started_rss, 1),
        "rss_mib_end": round(memory.rss_mib, 1),
        "peak_rss_mib": round(memory.peak_rss_mib, 1),
        "runs": runs,
    }


def run_record(payload: Payload, concurrency: int, result: load.Measurement) -> dict[str, Any]:
    r = result.load
    return {
        "payload": payload.name,
        "endpoint": payload.endpoint,
        "items": payload.items,
        "concurrency": concurrency,
        "requests": r.requests,
        "errors": r.errors,
        "seconds": round(r.seconds, 3),
        "rps": r.rps,
        "items_per_s": r.rps * payload.items,
        "p50_ms": r.p50_ms,
        "p95_ms": r.p95_ms,
        "p99_ms": r.p99_ms,
        "cpu_ms_per_request": result.cpu_ms_per_request,
        "client_cpu_ms_per_request": 1000 * result.client_cpu_s / r.requests if r.requests else 0,
    }


def run_serve(
    models_dir: Path,
    out: Path,
    how: Load,
    servers: tuple[str, ...],
    payload_names: tuple[str, ...],
    compute_seconds: float | None,
) -> dict[str, Any]:
    """Measures each server in `servers` (and, unless `compute_seconds` is None, the in-process
    ceilings) under `how`; raw outputs go to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    load.check_tool()
    payloads = build(out / "payloads")
    chosen = [payloads[name] for name in payload_names]
    runs = sum(
        len(how.concurrency)
        for kind in servers
        for payload in chosen
        if ServerSpec(kind, models_dir).serves(payload.endpoint)
    )
    print(
        f"{runs} load runs of {how.warmup_s:g} + {how.seconds:g} s (about "
        f"{runs * (how.warmup_s + how.seconds) / 60:.1f} minutes), plus starting "
        f"{len(servers)} servers",
        flush=True,
    )
    compute: dict[str, Any] = {}
    if compute_seconds is not None:
        print(f"in-process ceilings ({models_dir}) ...", flush=True)
        compute = run_compute(models_dir, chosen, compute_seconds, out)
    measured = {}
    for kind in servers:
        print(f"{kind}:", flush=True)
        digit = next((p for p in chosen if p.endpoint == "/digit"), None)
        spec = ServerSpec(
            kind,
            models_dir,
            env=how.env if kind in OURS else {},
            ready_request=(
                (digit.endpoint, digit.path.read_bytes(), digit.content_type)
                if kind == "bentoml" and digit is not None
                else None
            ),
        )
        measured[kind] = measure_server(spec, chosen, how, out)
    meta = {
        "seconds": how.seconds,
        "warmup_s": how.warmup_s,
        "models_dir": str(models_dir),
        "env": how.env,
        "out": str(out),
    }
    return {"meta": meta, "compute": compute, "servers": measured}
