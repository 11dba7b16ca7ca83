"""`python -m bench sweep`: our service alone under each candidate configuration, on the
requests that decide the targets, so each choice is kept only if it measurably helps.

A variant is a set of PERCEPTRON_* settings (code choices worth measuring are settings too, so
nothing is patched). Every variant gets a fresh server; compare variants within one sweep.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import machine, procstat
from bench.report import markdown_table, text_table
from bench.serve import ServeOptions, run_serve


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str] = field(default_factory=dict)


VARIANTS = (
    Variant("defaults"),
    Variant("batch max 16", {"PERCEPTRON_BATCH_MAX_SIZE": "16"}),
    Variant("batch max 32", {"PERCEPTRON_BATCH_MAX_SIZE": "32"}),
    Variant("batch max 128", {"PERCEPTRON_BATCH_MAX_SIZE": "128"}),
    Variant("batching off (wait 0)", {"PERCEPTRON_BATCH_MAX_WAIT_MS": "0"}),
    Variant("wait 0.5 ms", {"PERCEPTRON_BATCH_MAX_WAIT_MS": "0.5"}),
    Variant("wait 5 ms", {"PERCEPTRON_BATCH_MAX_WAIT_MS": "5"}),
    Variant("wait 20 ms", {"PERCEPTRON_BATCH_MAX_WAIT_MS": "20"}),
    Variant("TF intra 1", {"PERCEPTRON_TF_INTRA_OP_THREADS": "1"}),
    Variant("TF intra 2", {"PERCEPTRON_TF_INTRA_OP_THREADS": "2"}),
    Variant("TF inter 1", {"PERCEPTRON_TF_INTER_OP_THREADS": "1"}),
    Variant(
        "TF intra 1 inter 1",
        {"PERCEPTRON_TF_INTRA_OP_THREADS": "1", "PERCEPTRON_TF_INTER_OP_THREADS": "1"},
    ),
    Variant("log WARNING (no access log)", {"PERCEPTRON_LOG_LEVEL": "WARNING"}),
    Variant("plain-text logs", {"PERCEPTRON_LOG_JSON": "false"}),
    Variant("preprocess always in thread pool", {"PERCEPTRON_INLINE_PREPROCESS_BYTES": "0"}),
    Variant("preprocess always inline", {"PERCEPTRON_INLINE_PREPROCESS_BYTES": str(1 << 30)}),
)
PAYLOADS = ("digit-canvas", "mpg-one")


@dataclass
class SweepOptions:
    models_dir: Path
    out: Path
    variants: tuple[Variant, ...] = VARIANTS
    payloads: tuple[str, ...] = PAYLOADS
    concurrency: tuple[int, ...] = (1, 32)
    seconds: float = 8.0
    warmup_s: float = 2.0
    tool: str = "wrk"
    command: str = ""


def run_sweep(options: SweepOptions) -> dict[str, Any]:
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    described = machine.describe()
    rows = []
    for index, variant in enumerate(options.variants):
        print(f"[{index + 1}/{len(options.variants)}] {variant.name}", flush=True)
        results = run_serve(
            ServeOptions(
                models_dir=options.models_dir,
                out=out / f"{index:02d}",
                servers=("ours",),
                payloads=options.payloads,
                concurrency=options.concurrency,
                seconds=options.seconds,
                warmup_s=options.warmup_s,
                tool=options.tool,
                env=variant.env,
                with_compute=False,
            )
        )
        rows.append(
            {
                "variant": variant.name,
                "env": variant.env,
                "runs": results["servers"]["ours"]["runs"],
                "peak_rss_mib": results["servers"]["ours"]["peak_rss_mib"],
            }
        )
    report = {
        "command": options.command,
        "machine": described,
        "load_average_after": [round(x, 2) for x in procstat.load_average()],
        "seconds": options.seconds,
        "warmup_s": options.warmup_s,
        "tool": options.tool,
        "variants": rows,
        "out": str(out),
        "finished": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    (out / "sweep.json").write_text(json.dumps(report, indent=2))
    return report


def _columns(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    keys = [(r["payload"], r["concurrency"]) for r in report["variants"][0]["runs"]]
    columns = ["variant"]
    for payload, concurrency in keys:
        columns += [f"{payload} c={concurrency} req/s", "p50 ms", "CPU ms/req"]
    rows = []
    for variant in report["variants"]:
        row = [variant["variant"]]
        for run in variant["runs"]:
            flag = f" ({run['errors']} err)" if run["errors"] else ""
            row += [
                f"{run['rps']:,.0f}{flag}",
                f"{run['p50_ms']:.2f}",
                f"{run['cpu_ms_per_request']:.2f}",
            ]
        rows.append(row)
    return columns, rows


def render_text(report: dict[str, Any]) -> str:
    return text_table(*_columns(report))


def render_markdown(report: dict[str, Any]) -> str:
    from bench.machine import summary_line

    m = report["machine"]
    columns, rows = _columns(report)
    return "\n".join(
        [
            f"Measured {m['date']} on {summary_line(m)}; load average before "
            f"{m['load_average'][0]:.2f}, after {report['load_average_after'][0]:.2f}.",
            f"Command: `{report['command']}` ({report['tool']}, {report['seconds']:g} s per run "
            f"after a {report['warmup_s']:g} s warm-up; a fresh server per variant). Raw outputs: "
            f"`{report['out']}`.",
            "",
            markdown_table(columns, rows),
        ]
    )
