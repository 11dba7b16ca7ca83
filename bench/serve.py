"""`python -m bench serve`: our service against the HTTP-stack ceiling, the naive baseline and
the in-process compute ceiling, in one run on this machine.

Order: the in-process ceilings first (their own subprocess), then each server in turn, alone
on the machine: started, checked with one request per payload, then loaded with every payload
at each concurrency (warm-up discarded), then stopped. Raw tool outputs, server logs and the
results (JSON) go to `bench/out/serve-<time>/`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load, machine, procstat
from bench.payloads import Payload, build
from bench.servers import OURS, REPO, SERVER_KINDS, RunningServer, ServerSpec, running

ALL_PAYLOADS = ("digit-canvas", "digit-mnist", "digit-batch64", "mpg-one", "mpg-batch100")
QUICK_PAYLOADS = ("digit-canvas", "mpg-one")


@dataclass
class ServeOptions:
    models_dir: Path
    out: Path
    servers: tuple[str, ...] = SERVER_KINDS
    payloads: tuple[str, ...] = ALL_PAYLOADS
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    seconds: float = 10.0
    warmup_s: float = 3.0
    compute_seconds: float = 3.0
    tool: str = "wrk"
    env: dict[str, str] = field(default_factory=dict)
    command: str = ""
    with_compute: bool = True
    quick: bool = False


def run_compute(
    models_dir: Path, payloads: dict[str, Payload], seconds: float, out: Path
) -> dict[str, Any]:
    """The in-process ceilings, from `bench.compute` in a subprocess."""
    images = []
    for payload in payloads.values():
        if payload.image is not None:
            path = out / f"{payload.name}.image"
            path.write_bytes(payload.image)
            images += ["--image", f"{payload.name}={path}"]
    result_path = out / "compute.json"
    command = [
        sys.executable, "-m", "bench.compute", "--models-dir", str(models_dir),
        "--seconds", str(seconds), "--json", str(result_path), *images,
    ]  # fmt: skip
    env = _child_env()
    subprocess.run(command, check=True, cwd=REPO, env=env)
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


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
        answers[payload.name] = _headline(body)
    return answers


def _headline(body: Any) -> Any:
    first = body["results"][0] if isinstance(body, dict) and "results" in body else body
    if isinstance(first, dict):
        return {k: first[k] for k in ("digit", "probability", "mpg") if k in first}
    return first


def measure_server(
    spec: ServerSpec, payloads: list[Payload], options: ServeOptions, out: Path
) -> dict[str, Any]:
    payloads = [payload for payload in payloads if spec.serves(payload.endpoint)]
    with running(spec, out) as server:
        started_rss = procstat.memory(server.pid).rss_mib
        answers = check_answers(server, payloads)
        runs = []
        for payload in payloads:
            for concurrency in options.concurrency:
                label = f"{spec.kind}-{payload.name}-c{concurrency}"
                print(f"  {label} ...", end="", flush=True)
                result = load.measure(
                    options.tool,
                    server.url(payload.endpoint),
                    payload,
                    concurrency=concurrency,
                    seconds=options.seconds,
                    warmup_s=options.warmup_s,
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


def run_serve(options: ServeOptions) -> dict[str, Any]:
    """Runs everything `options` asks for; `options.out` is this run's own folder."""
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    load.check_tool(options.tool)
    described = machine.describe()
    others = machine.competing_work()
    if others:
        print("warning: also running; figures will be low and noisy:\n  " + "\n  ".join(others))
    payloads = build(out / "payloads")
    chosen = [payloads[name] for name in options.payloads]
    compute: dict[str, Any] = {}
    if options.with_compute:
        print(f"in-process ceilings ({options.models_dir}) ...", flush=True)
        compute = run_compute(
            options.models_dir, {p.name: p for p in chosen}, options.compute_seconds, out
        )
    servers = {}
    for kind in options.servers:
        print(f"{kind}:", flush=True)
        digit = next((p for p in chosen if p.endpoint == "/digit"), None)
        spec = ServerSpec(
            kind,
            options.models_dir,
            env=options.env if kind in OURS else {},
            ready_request=(
                (digit.endpoint, digit.path.read_bytes(), digit.content_type)
                if kind == "bentoml" and digit is not None
                else None
            ),
        )
        servers[kind] = measure_server(spec, chosen, options, out)
    results = {
        "meta": {
            "command": options.command or shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
            "machine": described,
            "load_average_after": [round(x, 2) for x in procstat.load_average()],
            # Seen at the start or the end of the run.
            "training_running": sorted(set(others) | set(machine.competing_work())),
            "tool": options.tool,
            "seconds": options.seconds,
            "warmup_s": options.warmup_s,
            "models_dir": str(options.models_dir),
            "env": options.env,
            "quick": options.quick,
            "out": str(out),
        },
        "compute": compute,
        "servers": servers,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
