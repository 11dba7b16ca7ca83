"""`python -m bench memory`: does our service's memory stay flat under sustained load?

Starts the service, warms it up, then runs two load tools at once for `--duration` seconds
(canvas uploads at concurrency 24 and single cars at concurrency 8) while sampling the
resident memory of its process tree. The start is the RSS after the warm-up; drift is the
largest distance from it, end or peak, as a fraction of it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import load, machine, procstat
from bench.payloads import build
from bench.servers import ServerSpec, running

MIXES = (("digit-canvas", 24), ("mpg-one", 8))


@dataclass
class MemoryOptions:
    models_dir: Path
    out: Path
    duration_s: float = 300.0
    warmup_s: float = 20.0
    sample_every_s: float = 5.0
    tool: str = "wrk"
    env: dict[str, str] | None = None
    command: str = ""


def run_memory(options: MemoryOptions) -> dict[str, Any]:
    out = options.out / f"memory-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    load.check_tool(options.tool)
    described = machine.describe()
    payloads = build(out / "payloads")
    with running(ServerSpec("ours", options.models_dir, env=options.env or {}), out) as server:
        print(f"warming up for {options.warmup_s:.0f} s ...", flush=True)
        _run_mix(options, server.url, payloads, options.warmup_s, out, "warmup")
        start = procstat.memory(server.pid).rss_mib
        samples: list[tuple[float, float]] = [(0.0, start)]
        stop = threading.Event()

        def sample() -> None:
            began = time.monotonic()
            while not stop.wait(options.sample_every_s):
                samples.append((time.monotonic() - began, procstat.memory(server.pid).rss_mib))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        print(
            f"loading for {options.duration_s:.0f} s, RSS every {options.sample_every_s:g} s ...",
            flush=True,
        )
        results = _run_mix(options, server.url, payloads, options.duration_s, out, "run")
        stop.set()
        sampler.join()
        end = procstat.memory(server.pid)
    rss = [value for _, value in samples] + [end.rss_mib]
    drift = max((value - start for value in rss), key=abs) / start
    report = {
        "command": options.command,
        "machine": described,
        "load_average_after": [round(x, 2) for x in procstat.load_average()],
        "duration_s": options.duration_s,
        "start_rss_mib": start,
        "end_rss_mib": end.rss_mib,
        "max_rss_mib": max(rss),
        "min_rss_mib": min(rss),
        "peak_rss_mib": end.peak_rss_mib,
        "max_drift": drift,
        "end_drift": (end.rss_mib - start) / start,
        "requests": sum(r["requests"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "loads": results,
        "samples": samples,
        "out": str(out),
    }
    (out / "memory.json").write_text(json.dumps(report, indent=2))
    return report


def _run_mix(
    options: MemoryOptions,
    url: Any,
    payloads: dict[str, Any],
    seconds: float,
    out: Path,
    label: str,
) -> list[dict[str, Any]]:
    """Runs every load of `MIXES` at once for `seconds`; returns their results."""
    processes = []
    for name, concurrency in MIXES:
        payload = payloads[name]
        command = load.command(
            options.tool, url(payload.endpoint), payload, concurrency, seconds, out
        )
        processes.append(
            (
                name,
                concurrency,
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
            )
        )
    results = []
    for name, concurrency, process in processes:
        output = process.communicate()[0].decode("utf-8", "replace")
        (out / f"{label}-{name}.txt").write_text(output)
        if process.returncode:
            raise RuntimeError(f"{options.tool} failed:\n{output[-2000:]}")
        parsed = load.parse(options.tool, output)
        results.append(
            {
                "payload": name,
                "concurrency": concurrency,
                "requests": parsed.requests,
                "errors": parsed.errors,
                "rps": parsed.rps,
                "p50_ms": parsed.p50_ms,
                "p99_ms": parsed.p99_ms,
            }
        )
    return results


def render_markdown(report: dict[str, Any]) -> str:
    from bench.machine import summary_line
    from bench.report import memory_target

    m = report["machine"]
    target = memory_target(report)
    loads = "; ".join(
        f"{r['payload']} at c={r['concurrency']}: {r['requests']:,} requests ({r['rps']:.0f}/s, "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['errors']} errors)"
        for r in report["loads"]
    )
    trace = ", ".join(
        f"{value:.0f}" for _, value in report["samples"][:: max(1, len(report["samples"]) // 12)]
    )
    return "\n".join(
        [
            f"Measured {m['date']} on {summary_line(m)}; load average before "
            f"{m['load_average'][0]:.2f}, after {report['load_average_after'][0]:.2f}.",
            f"Command: `{report['command']}`. Raw outputs: `{report['out']}`.",
            "",
            f"Load: {loads}.",
            "",
            f"RSS (MiB): start {report['start_rss_mib']:.0f} (after the warm-up), end "
            f"{report['end_rss_mib']:.0f}, min {report['min_rss_mib']:.0f}, max "
            f"{report['max_rss_mib']:.0f}; peak VmHWM {report['peak_rss_mib']:.0f}. "
            f"Largest drift from the start: {report['max_drift']:+.1%}; at the end: "
            f"{report['end_drift']:+.1%}. Samples: {trace}.",
            "",
            f"Target ({target.requirement}): **{target.verdict}**.",
        ]
    )
