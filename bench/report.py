"""Ratios, targets and tables from a `bench serve` result (and a `bench memory` one).

Everything here is pure: it reads the result dictionaries the runs write, so it is tested on
canned results without running anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.machine import summary_line

SINGLE_IMAGES = ("digit-canvas", "digit-mnist")
LOAD_CONCURRENCY = 32
SPEEDUP_OVER_NAIVE = 20.0
SHARE_OF_CEILING = 0.5
MAX_RSS_DRIFT = 0.10
MEMORY_RUN_S = 300
LEAD_OVER_PEER = 2.0
PEER_PAYLOAD = "digit-canvas"
PEER_CONCURRENCY = (1, LOAD_CONCURRENCY)


def find_run(
    results: dict[str, Any], server: str, payload: str, concurrency: int
) -> dict[str, Any] | None:
    for run in results.get("servers", {}).get(server, {}).get("runs", []):
        if run["payload"] == payload and run["concurrency"] == concurrency:
            found: dict[str, Any] = run
            return found
    return None


def compute_rate(results: dict[str, Any], model: str, rows: int) -> dict[str, Any] | None:
    for entry in results.get("compute", {}).get(model, []):
        if entry["rows"] == rows:
            found: dict[str, Any] = entry
            return found
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def compute_reference(results: dict[str, Any], run: dict[str, Any]) -> tuple[str, float | None]:
    """The in-process rate a run's items/s is compared with: the digit model at batch 32 (the
    target's reference), the mpg model at the request's own batch size."""
    if run["endpoint"] == "/digit":
        entry = compute_rate(results, "digit", 32)
        return "digit@32", entry["rows_per_s"] if entry else None
    entry = compute_rate(results, "mpg", run["items"])
    return f"mpg@{run['items']}", entry["rows_per_s"] if entry else None


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """For each of our runs: ours/bare and ours/naive in requests/s at the same payload and
    concurrency, and ours/compute in items/s."""
    rows = []
    for run in results.get("servers", {}).get("ours", {}).get("runs", []):
        bare = find_run(results, "bare", run["payload"], run["concurrency"])
        naive = find_run(results, "naive", run["payload"], run["concurrency"])
        reference, rate = compute_reference(results, run)
        rows.append(
            {
                "payload": run["payload"],
                "concurrency": run["concurrency"],
                "ours_over_bare": _ratio(run["rps"], bare["rps"] if bare else None),
                "ours_over_naive": _ratio(run["rps"], naive["rps"] if naive else None),
                "ours_over_compute": _ratio(run["items_per_s"], rate),
                "compute_reference": reference,
            }
        )
    return rows


@dataclass(frozen=True)
class Target:
    name: str
    requirement: str
    measured: str
    met: bool | None
    """None: not measured in this run."""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def targets(results: dict[str, Any], memory: dict[str, Any] | None = None) -> list[Target]:
    """Issue 7's targets, evaluated on this run, for both single-image uploads."""
    found = []
    compute32 = compute_rate(results, "digit", 32)
    compute1 = compute_rate(results, "digit", 1)
    for payload in SINGLE_IMAGES:
        ours = find_run(results, "ours", payload, LOAD_CONCURRENCY)
        naive = find_run(results, "naive", payload, LOAD_CONCURRENCY)
        bare = find_run(results, "bare", payload, LOAD_CONCURRENCY)
        if ours is None:
            continue
        speedup = _ratio(ours["rps"], naive["rps"] if naive else None)
        found.append(
            Target(
                f"/digit {payload} c={LOAD_CONCURRENCY} vs naive",
                f">= {SPEEDUP_OVER_NAIVE:g}x the naive baseline's requests/s",
                f"{_fmt(ours['rps'])} vs {_fmt(naive['rps'] if naive else None)} req/s = "
                f"{_fmt(speedup, 2)}x",
                None if speedup is None else speedup >= SPEEDUP_OVER_NAIVE,
            )
        )
        ceilings = [x for x in (compute32 and compute32["rows_per_s"], bare and bare["rps"]) if x]
        bound = SHARE_OF_CEILING * min(ceilings) if len(ceilings) == 2 else None
        found.append(
            Target(
                f"/digit {payload} c={LOAD_CONCURRENCY} vs ceilings",
                f">= {SHARE_OF_CEILING:.0%} of min(compute@32 images/s, bare req/s)",
                f"{_fmt(ours['rps'])} req/s vs 50% of "
                f"min({_fmt(compute32 and compute32['rows_per_s'])}, "
                f"{_fmt(bare and bare['rps'])}) = {_fmt(bound)}",
                None if bound is None else ours["rps"] >= bound,
            )
        )
        ours1 = find_run(results, "ours", payload, 1)
        bare1 = find_run(results, "bare", payload, 1)
        prep = results.get("compute", {}).get("preprocess", {}).get(payload)
        if ours1 is not None:
            limit = None
            if bare1 and compute1 and prep:
                limit = bare1["p50_ms"] + 2 * compute1["ms_per_call"] + prep["median_ms"]
            found.append(
                Target(
                    f"/digit {payload} c=1 p50",
                    "<= bare p50 + 2 x batch-1 model call + decode/preprocess",
                    f"{ours1['p50_ms']:.2f} ms vs {_fmt(bare1 and bare1['p50_ms'], 2)} + 2 x "
                    f"{_fmt(compute1 and compute1['ms_per_call'], 2)} + "
                    f"{_fmt(prep and prep['median_ms'], 2)} = {_fmt(limit, 2)} ms",
                    None if limit is None else ours1["p50_ms"] <= limit,
                )
            )
    ours_mpg = find_run(results, "ours", "mpg-one", LOAD_CONCURRENCY)
    bare_mpg = find_run(results, "bare", "mpg-one", LOAD_CONCURRENCY)
    if ours_mpg is not None:
        share = _ratio(ours_mpg["rps"], bare_mpg["rps"] if bare_mpg else None)
        found.append(
            Target(
                f"/mpg one car c={LOAD_CONCURRENCY}",
                f">= {SHARE_OF_CEILING:.0%} of the bare JSON endpoint's requests/s",
                f"{_fmt(ours_mpg['rps'])} vs {_fmt(bare_mpg and bare_mpg['rps'])} req/s = "
                f"{_fmt(share and share * 100)}%",
                None if share is None else share >= SHARE_OF_CEILING,
            )
        )
    if ours_mpg is not None:
        naive_mpg = find_run(results, "naive", "mpg-one", LOAD_CONCURRENCY)
        speedup = _ratio(ours_mpg["rps"], naive_mpg["rps"] if naive_mpg else None)
        found.append(
            Target(
                f"/mpg one car c={LOAD_CONCURRENCY} vs naive",
                f">= {SPEEDUP_OVER_NAIVE:g}x the naive baseline's requests/s",
                f"{_fmt(ours_mpg['rps'])} vs {_fmt(naive_mpg and naive_mpg['rps'])} req/s = "
                f"{_fmt(speedup, 2)}x",
                None if speedup is None else speedup >= SPEEDUP_OVER_NAIVE,
            )
        )
    for concurrency in PEER_CONCURRENCY:
        ours = find_run(results, "ours", PEER_PAYLOAD, concurrency)
        peer = find_run(results, "bentoml", PEER_PAYLOAD, concurrency)
        if ours is None or peer is None:
            continue
        lead = _ratio(ours["rps"], peer["rps"])
        found.append(
            Target(
                f"/digit {PEER_PAYLOAD} c={concurrency} vs BentoML",
                f">= {LEAD_OVER_PEER:g}x BentoML's requests/s (its errors noted)",
                f"{_fmt(ours['rps'])} vs {_fmt(peer['rps'])} req/s = {_fmt(lead, 2)}x; "
                f"BentoML errors {peer['errors']:,} of {peer['requests']:,}",
                None if lead is None else lead >= LEAD_OVER_PEER,
            )
        )
    ours_runs = results.get("servers", {}).get("ours", {}).get("runs", [])
    if ours_runs:
        errors = sum(run["errors"] for run in ours_runs)
        requests = sum(run["requests"] for run in ours_runs)
        found.append(
            Target(
                "errors",
                "no failed request in any of our runs",
                f"{errors:,} of {requests:,}",
                errors == 0,
            )
        )
    found.append(memory_target(memory))
    return found


def scaling(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each run of `ours` (every core) beside the same run of `ours-1` (one process)."""
    rows = []
    for run in results.get("servers", {}).get("ours", {}).get("runs", []):
        single = find_run(results, "ours-1", run["payload"], run["concurrency"])
        if single is not None:
            rows.append({"one": single, "all": run, "speedup": _ratio(run["rps"], single["rps"])})
    return rows


SCALING_COLUMNS = (
    "request",
    "c",
    "req/s 1 proc",
    "req/s all",
    "all/1",
    "p50 ms 1 / all",
    "p99 ms 1 / all",
    "CPU ms/req 1 / all",
    "errors 1 / all",
)


def scaling_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [
            r["all"]["payload"],
            str(r["all"]["concurrency"]),
            _fmt(r["one"]["rps"]),
            _fmt(r["all"]["rps"]),
            "n/a" if r["speedup"] is None else f"{r['speedup']:.2f}x",
            f"{r['one']['p50_ms']:.2f} / {r['all']['p50_ms']:.2f}",
            f"{r['one']['p99_ms']:.2f} / {r['all']['p99_ms']:.2f}",
            f"{r['one']['cpu_ms_per_request']:.2f} / {r['all']['cpu_ms_per_request']:.2f}",
            f"{r['one']['errors']} / {r['all']['errors']}",
        ]
        for r in scaling(results)
    ]


PEER_COLUMNS = ("request", "c", "ours req/s", "BentoML req/s", "ours/BentoML", "BentoML errors")


def peer_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for peer in results.get("servers", {}).get("bentoml", {}).get("runs", []):
        ours = find_run(results, "ours", peer["payload"], peer["concurrency"])
        if ours is None:
            continue
        lead = _ratio(ours["rps"], peer["rps"])
        share = peer["errors"] / peer["requests"] if peer["requests"] else 0.0
        rows.append(
            [
                peer["payload"],
                str(peer["concurrency"]),
                _fmt(ours["rps"]),
                _fmt(peer["rps"]),
                "n/a" if lead is None else f"{lead:.2f}x",
                f"{peer['errors']:,} of {peer['requests']:,} ({share:.1%})",
            ]
        )
    return rows


def memory_target(memory: dict[str, Any] | None) -> Target:
    requirement = f"RSS within {MAX_RSS_DRIFT:.0%} of its start over a 5-minute load run"
    if not memory:
        return Target("memory", requirement, "run `python -m bench memory`", None)
    drift = memory["max_drift"]
    return Target(
        "memory",
        requirement,
        f"{memory['start_rss_mib']:.0f} -> {memory['end_rss_mib']:.0f} MiB (max "
        f"{memory['max_rss_mib']:.0f}) over {memory['duration_s']:.0f} s, "
        f"{memory['requests']:,} requests: drift {drift:+.1%}",
        abs(drift) <= MAX_RSS_DRIFT if memory["duration_s"] >= MEMORY_RUN_S else None,
    )


# -- rendering -------------------------------------------------------------------------------

RUN_COLUMNS = (
    "server",
    "request",
    "c",
    "req/s",
    "items/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "CPU ms/req",
    "errors",
)


def run_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for server, data in results.get("servers", {}).items():
        for run in data["runs"]:
            rows.append(
                [
                    server,
                    run["payload"],
                    str(run["concurrency"]),
                    _fmt(run["rps"], 1 if run["rps"] < 100 else 0),
                    _fmt(run["items_per_s"], 1 if run["items_per_s"] < 100 else 0),
                    f"{run['p50_ms']:.2f}",
                    f"{run['p95_ms']:.2f}",
                    f"{run['p99_ms']:.2f}",
                    f"{run['cpu_ms_per_request']:.2f}",
                    str(run["errors"]),
                ]
            )
    return rows


def ratio_rows(results: dict[str, Any]) -> list[list[str]]:
    def x(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}x"

    return [
        [
            r["payload"],
            str(r["concurrency"]),
            x(r["ours_over_bare"]),
            x(r["ours_over_naive"]),
            f"{x(r['ours_over_compute'])} ({r['compute_reference']})",
        ]
        for r in ratios(results)
    ]


RATIO_COLUMNS = ("request", "c", "ours/bare", "ours/naive", "ours/compute")


def compute_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for model in ("digit", "mpg"):
        for entry in results.get("compute", {}).get(model, []):
            rows.append(
                [
                    model,
                    str(entry["rows"]),
                    f"{entry['ms_per_call']:.3f}",
                    _fmt(entry["rows_per_s"]),
                ]
            )
    return rows


def preprocess_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [name, f"{entry['median_ms']:.3f}", f"{entry['mean_ms']:.3f}"]
        for name, entry in results.get("compute", {}).get("preprocess", {}).items()
    ]


def memory_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [server, _fmt(data["rss_mib_ready"]), _fmt(data["rss_mib_end"]), _fmt(data["peak_rss_mib"])]
        for server, data in results.get("servers", {}).items()
    ]


def text_table(columns: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]
    lines = [
        "  ".join(
            c.rjust(w) if i > 1 else c.ljust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    ]
    for row in rows:
        lines.append(
            "  ".join(
                v.rjust(w) if i > 1 else v.ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def markdown_table(columns: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|"
    return "\n".join([head, rule, *("| " + " | ".join(row) + " |" for row in rows)])


def render_text(results: dict[str, Any], memory: dict[str, Any] | None = None) -> str:
    parts = [
        "Load runs",
        text_table(RUN_COLUMNS, run_rows(results)),
        "",
        "Ratios (requests/s; ours/compute in items/s)",
        text_table(RATIO_COLUMNS, ratio_rows(results)),
        "",
        "Scaling: one process (ours-1) against one per core (ours)",
        text_table(SCALING_COLUMNS, scaling_rows(results)),
        "",
        "Against BentoML",
        text_table(PEER_COLUMNS, peer_rows(results)),
        "",
        "In-process model calls",
        text_table(("model", "batch", "ms/call", "rows/s"), compute_rows(results)),
        "",
        "Decode + preprocess (service.imaging), per image",
        text_table(("image", "median ms", "mean ms"), preprocess_rows(results)),
        "",
        "Server memory (MiB)",
        text_table(("server", "RSS ready", "RSS end", "peak (VmHWM)"), memory_rows(results)),
        "",
        "Targets",
        text_table(
            ("target", "verdict", "measured"),
            [[t.name, t.verdict, t.measured] for t in targets(results, memory)],
        ),
    ]
    return "\n".join(parts)


def render_markdown(results: dict[str, Any], memory: dict[str, Any] | None = None) -> str:
    meta = results["meta"]
    m = meta["machine"]
    load = m["load_average"]
    parts = [
        f"Measured {m['date']} on {summary_line(m)}.",
        f"Load average before the run: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min); "
        f"after: {' / '.join(f'{x:.2f}' for x in meta['load_average_after'])}. "
        + (
            "Also running (the figures are low and noisy): " + "; ".join(meta["training_running"])
            if meta["training_running"]
            else "No training run or test suite was running."
        ),
        "",
        f"Command: `{meta['command']}` (load tool: {meta['tool']}, {meta['seconds']:g} s per run "
        f"after a {meta['warmup_s']:g} s warm-up that is discarded; models: `{meta['models_dir']}`"
        + (f"; settings {meta['env']}" if meta["env"] else "")
        # Results written before module patches became settings may still name some.
        + (f"; patched {meta['patches']}" if meta.get("patches") else "")
        + "). Raw outputs: `"
        + meta["out"]
        + "`.",
        "",
        markdown_table(RUN_COLUMNS, run_rows(results)),
        "",
        "Ratios: requests/s of ours over bare and naive at the same request and concurrency; "
        "ours/compute: images (cars) per second over the in-process model rate named.",
        "",
        markdown_table(RATIO_COLUMNS, ratio_rows(results)),
        "",
        "Scaling: `ours-1` is the service in one process (`PERCEPTRON_WORKERS=1`), `ours` the "
        "default (one process per core); CPU ms per request counts every process of the server.",
        "",
        markdown_table(SCALING_COLUMNS, scaling_rows(results)),
        "",
        "Against BentoML (bench/bentoml_digit.py: the same SavedModel and preprocessing, "
        "BentoML's documented API-service + batchable-model-service composition, its defaults):",
        "",
        markdown_table(PEER_COLUMNS, peer_rows(results)),
        "",
        "In-process model calls (the serving signature called directly, median of repeated calls):",
        "",
        markdown_table(("model", "batch", "ms/call", "rows/s"), compute_rows(results)),
        "",
        "Decode and preprocess of the benchmark images (`service.imaging`), in-process:",
        "",
        markdown_table(("image", "median ms", "mean ms"), preprocess_rows(results)),
        "",
        "Server memory over the run (MiB, process tree):",
        "",
        markdown_table(("server", "RSS ready", "RSS end", "peak (VmHWM)"), memory_rows(results)),
    ]
    return "\n".join(parts)


def render_targets_markdown(results: dict[str, Any], memory: dict[str, Any] | None) -> str:
    rows = [
        [t.name, t.requirement, t.measured, f"**{t.verdict}**"] for t in targets(results, memory)
    ]
    return markdown_table(("target", "requirement", "measured", "verdict"), rows)


def replace_section(path: Path, section: str, markdown: str) -> None:
    """Replaces the text between `<!-- bench:SECTION -->` and `<!-- /bench:SECTION -->` in
    `path` (appending the section when it is missing), leaving the rest of the file alone."""
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")
