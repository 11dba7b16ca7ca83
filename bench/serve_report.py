"""Ratios, targets and tables from a `bench serve` result (and the latest `bench soak`).

Everything here is pure: it reads the result dictionaries the runs write, so it is tested on
canned results without running anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import table

SINGLE_IMAGES = ("digit-canvas", "digit-mnist")
LOAD_CONCURRENCY = 32
SHARE_OF_CEILING = 0.5
DIGIT_SHARE_OF_UPLOAD = 0.40
"""/digit at LOAD_CONCURRENCY clients: at least this share of the bare upload endpoint's
requests/s (the compiled runtime's target)."""
DIGIT_P50_MS = 1.5
"""/digit at one client: at most this median latency (ms)."""
MPG_SHARE_OF_JSON = 0.80
"""/mpg one car at LOAD_CONCURRENCY clients: at least this share of the bare JSON endpoint's
requests/s."""
MAX_RSS_GROWTH = 0.10
SOAK_MINUTES = 5
LEAD_OVER_PEER = 2.0
PEER_PAYLOAD = "digit-canvas"
PEER_CONCURRENCY = (1, LOAD_CONCURRENCY)


def latest(out: Path, pattern: str, name: str) -> dict[str, Any] | None:
    """The newest `name` under the run folders `out/pattern`, if any."""
    for folder in sorted(out.glob(pattern), reverse=True):
        if (folder / name).exists():
            found: dict[str, Any] = json.loads((folder / name).read_text())
            return found
    return None


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


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def compute_reference(results: dict[str, Any], run: dict[str, Any]) -> tuple[str, float | None]:
    """The in-process rate a run's items/s is compared with: the digit model at batch 32 (the
    target's reference), the mpg model at the request's own batch size."""
    if run["endpoint"] == "/digit":
        entry = compute_rate(results, "digit", 32)
        return "digit@32", entry["rows_per_s"] if entry else None
    entry = compute_rate(results, "mpg", run["items"])
    return f"mpg@{run['items']}", entry["rows_per_s"] if entry else None


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """For each of our runs: ours/bare in requests/s at the same payload and concurrency, and
    ours/compute in items/s."""
    rows = []
    for run in results.get("servers", {}).get("ours", {}).get("runs", []):
        bare = find_run(results, "bare", run["payload"], run["concurrency"])
        reference, rate = compute_reference(results, run)
        rows.append(
            {
                "payload": run["payload"],
                "concurrency": run["concurrency"],
                "ours_over_bare": _ratio(run["rps"], bare["rps"] if bare else None),
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


def _digit_targets(results: dict[str, Any], payload: str) -> list[Target]:
    ours = find_run(results, "ours", payload, LOAD_CONCURRENCY)
    if ours is None:
        return []
    compute32, compute1 = compute_rate(results, "digit", 32), compute_rate(results, "digit", 1)
    bare = find_run(results, "bare", payload, LOAD_CONCURRENCY)
    ceilings = [x for x in (compute32 and compute32["rows_per_s"], bare and bare["rps"]) if x]
    bound = SHARE_OF_CEILING * min(ceilings) if len(ceilings) == 2 else None
    found = [
        Target(
            f"/digit {payload} c={LOAD_CONCURRENCY} vs ceilings",
            f">= {SHARE_OF_CEILING:.0%} of min(compute@32 images/s, bare req/s)",
            f"{_fmt(ours['rps'])} req/s vs 50% of "
            f"min({_fmt(compute32 and compute32['rows_per_s'])}, "
            f"{_fmt(bare and bare['rps'])}) = {_fmt(bound)}",
            None if bound is None else ours["rps"] >= bound,
        ),
    ]
    share = _ratio(ours["rps"], bare["rps"] if bare else None)
    found.append(
        Target(
            f"/digit {payload} c={LOAD_CONCURRENCY} vs bare upload",
            f">= {DIGIT_SHARE_OF_UPLOAD:.0%} of the bare upload endpoint's requests/s",
            f"{_fmt(ours['rps'])} vs {_fmt(bare and bare['rps'])} req/s = "
            f"{_fmt(share and share * 100)}%",
            None if share is None else share >= DIGIT_SHARE_OF_UPLOAD,
        )
    )
    ours1, bare1 = find_run(results, "ours", payload, 1), find_run(results, "bare", payload, 1)
    if ours1 is not None:
        found.append(
            Target(
                f"/digit {payload} c=1 p50 at most {DIGIT_P50_MS:g} ms",
                f"<= {DIGIT_P50_MS:g} ms",
                f"{ours1['p50_ms']:.2f} ms",
                ours1["p50_ms"] <= DIGIT_P50_MS,
            )
        )
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
    return found


def targets(results: dict[str, Any], soak: dict[str, Any] | None = None) -> list[Target]:
    """The serving targets, evaluated on this run, for both single-image uploads."""
    found: list[Target] = []
    for payload in SINGLE_IMAGES:
        found += _digit_targets(results, payload)
    ours_mpg = find_run(results, "ours", "mpg-one", LOAD_CONCURRENCY)
    if ours_mpg is not None:
        bare_mpg = find_run(results, "bare", "mpg-one", LOAD_CONCURRENCY)
        share = _ratio(ours_mpg["rps"], bare_mpg["rps"] if bare_mpg else None)
        found.append(
            Target(
                f"/mpg one car c={LOAD_CONCURRENCY}",
                f">= {MPG_SHARE_OF_JSON:.0%} of the bare JSON endpoint's requests/s",
                f"{_fmt(ours_mpg['rps'])} vs {_fmt(bare_mpg and bare_mpg['rps'])} req/s = "
                f"{_fmt(share and share * 100)}%",
                None if share is None else share >= MPG_SHARE_OF_JSON,
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
            Target("errors", "no failed request in any of our runs",
                   f"{errors:,} of {requests:,}", errors == 0)
        )  # fmt: skip
    found.append(memory_target(soak))
    return found


def memory_target(soak: dict[str, Any] | None) -> Target:
    """The API's resident memory over the latest soak (`python -m bench soak`)."""
    requirement = (
        f"API RSS within {MAX_RSS_GROWTH:.0%} of its start over a {SOAK_MINUTES}-minute soak"
    )
    if not soak:
        return Target("memory", requirement, "run `python -m bench soak`", None)
    start, end, growth = (
        soak["start"]["api_rss_mib"],
        soak["end"]["api_rss_mib"],
        soak["api_rss_growth"],
    )
    return Target(
        "memory",
        requirement,
        f"{start:.0f} -> {end:.0f} MiB over {soak['minutes']:g} minutes, "
        f"{soak['run']['requests']:,} requests: {growth:+.1%}",
        abs(growth) <= MAX_RSS_GROWTH if soak["minutes"] >= SOAK_MINUTES else None,
    )


def scaling(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each run of `ours` (every core) beside the same run of `ours-1` (one process)."""
    rows = []
    for run in results.get("servers", {}).get("ours", {}).get("runs", []):
        single = find_run(results, "ours-1", run["payload"], run["concurrency"])
        if single is not None:
            rows.append({"one": single, "all": run, "speedup": _ratio(run["rps"], single["rps"])})
    return rows


def peer_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for peer in results.get("servers", {}).get("bentoml", {}).get("runs", []):
        ours = find_run(results, "ours", peer["payload"], peer["concurrency"])
        if ours is None:
            continue
        share = peer["errors"] / peer["requests"] if peer["requests"] else 0.0
        rows.append(
            [peer["payload"], str(peer["concurrency"]), _fmt(ours["rps"]), _fmt(peer["rps"]),
             _x(_ratio(ours["rps"], peer["rps"])),
             f"{peer['errors']:,} of {peer['requests']:,} ({share:.1%})"]
        )  # fmt: skip
    return rows


def _run_row(server: str, run: dict[str, Any]) -> list[str]:
    rps, items = run["rps"], run["items_per_s"]
    return [
        server, run["payload"], str(run["concurrency"]), _fmt(rps, 1 if rps < 100 else 0),
        _fmt(items, 1 if items < 100 else 0), f"{run['p50_ms']:.2f}", f"{run['p95_ms']:.2f}",
        f"{run['p99_ms']:.2f}", f"{run['cpu_ms_per_request']:.2f}", str(run["errors"]),
    ]  # fmt: skip


def _pair(one: dict[str, Any], all_: dict[str, Any], key: str) -> str:
    return f"{one[key]:.2f} / {all_[key]:.2f}"


def render(results: dict[str, Any]) -> str:
    """The `serve` section: every run, the ratios, scaling, the peer, the in-process ceilings
    and the servers' memory."""
    meta, servers = results["meta"], results.get("servers", {})
    compute = results.get("compute", {})
    runs = [_run_row(server, run) for server, data in servers.items() for run in data["runs"]]
    ratio_rows = [
        [r["payload"], str(r["concurrency"]), _x(r["ours_over_bare"]),
         f"{_x(r['ours_over_compute'])} ({r['compute_reference']})"]
        for r in ratios(results)
    ]  # fmt: skip
    scaling_rows = [
        [r["all"]["payload"], str(r["all"]["concurrency"]), _fmt(r["one"]["rps"]),
         _fmt(r["all"]["rps"]), _x(r["speedup"]),
         *(_pair(r["one"], r["all"], k) for k in ("p50_ms", "p99_ms", "cpu_ms_per_request")),
         f"{r['one']['errors']} / {r['all']['errors']}"]
        for r in scaling(results)
    ]  # fmt: skip
    model_rows = [
        [model, str(e["rows"]), f"{e['ms_per_call']:.3f}", _fmt(e["rows_per_s"])]
        for model in ("digit", "mpg")
        for e in compute.get(model, [])
    ]
    preprocess_rows = [
        [name, f"{e['median_ms']:.3f}", f"{e['mean_ms']:.3f}"]
        for name, e in compute.get("preprocess", {}).items()
    ]
    memory_rows = [
        [server, _fmt(d["rss_mib_ready"]), _fmt(d["rss_mib_end"]), _fmt(d["peak_rss_mib"])]
        for server, d in servers.items()
    ]
    settings = f"; settings {meta['env']}" if meta["env"] else ""
    scaling_block = [
        "Scaling: `ours-1` is the service in one process (`PERCEPTRON_WORKERS=1`), `ours` the "
        "default (one process per core); CPU ms per request counts every process.",
        "",
        table(("request", "c", "req/s 1 proc", "req/s all", "all/1", "p50 ms 1 / all",
               "p99 ms 1 / all", "CPU ms/req 1 / all", "errors 1 / all"), scaling_rows),
        "",
    ] if scaling_rows else []  # fmt: skip
    return "\n".join(
        [
            f"wrk, {meta['seconds']:g} s per run after a "
            f"{meta['warmup_s']:g} s warm-up that is discarded; models `{meta['models_dir']}`"
            f"{settings}. Raw outputs: `{meta['out']}`.",
            "",
            table(("server", "request", "c", "req/s", "items/s", "p50 ms", "p95 ms", "p99 ms",
                   "CPU ms/req", "errors"), runs),
            "",
            "Ratios: requests/s of ours over bare at the same request and concurrency; "
            "ours/compute: images (cars) per second over the in-process model rate named.",
            "",
            table(("request", "c", "ours/bare", "ours/compute"), ratio_rows),
            "",
            *scaling_block,
            "Against BentoML (bench/bentoml_digit.py: the same SavedModel and preprocessing, "
            "BentoML's documented API-service + batchable-model-service composition, its "
            "defaults):",
            "",
            table(("request", "c", "ours req/s", "BentoML req/s", "ours/BentoML",
                   "BentoML errors"), peer_rows(results)),
            "",
            "In-process model calls (the serving signature called directly, median of calls):",
            "",
            table(("model", "batch", "ms/call", "rows/s"), model_rows),
            "",
            "Decode and preprocess of the benchmark images, in process:",
            "",
            table(("image", "median ms", "mean ms"), preprocess_rows),
            "",
            "Server memory over the run (MiB, process tree):",
            "",
            table(("server", "RSS ready", "RSS end", "peak (VmHWM)"), memory_rows),
        ]
    )  # fmt: skip


def render_targets(results: dict[str, Any], soak: dict[str, Any] | None) -> str:
    rows = [[t.name, t.requirement, t.measured, f"**{t.verdict}**"] for t in targets(results, soak)]
    return table(("target", "requirement", "measured", "verdict"), rows)
