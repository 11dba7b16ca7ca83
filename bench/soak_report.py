"""The soak's report: tables and verdicts from the dictionary `bench soak` writes (pure, so it
can be rendered again from `bench/out/soak-*/soak.json`)."""

from __future__ import annotations

from typing import Any

from bench.results import table

MAX_RSS_GROWTH = 0.10
KIND_COLUMNS = ("requests", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "answers")


def kind_rows(run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, kind in [*run["kinds"].items(), ("all", run)]:
        outcomes = kind.get("outcomes")
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(outcomes.items())) if outcomes else ""
        rows.append(
            [name, f"{kind['requests']:,}", f"{kind['p50_ms']:.1f}", f"{kind['p95_ms']:.1f}",
             f"{kind['p99_ms']:.1f}", f"{kind['max_ms']:.0f}", answers]
        )  # fmt: skip
    return rows


def resource_rows(report: dict[str, Any]) -> list[list[str]]:
    def value(sample: dict[str, Any], key: str) -> str:
        return "-" if sample.get(key) is None else f"{sample[key]:,}"

    keys = ("api_rss_mib", "api_fds", "worker_rss_mib", "worker_fds")
    return [
        [moment, *(value(report[moment], key) for key in keys)]
        for moment in ("ready", "start", "end")
    ]


RESOURCE_COLUMNS = ("moment", "API RSS MiB", "API fds", "worker RSS MiB", "worker fds")


def verdicts(report: dict[str, Any]) -> list[list[str]]:
    run = report["run"]
    growth = report["api_rss_growth"]
    start, end = report["start"], report["end"]
    swaps = [e for e in report["events"] if e.get("swap")]
    swaps_ok = bool(swaps) and all(e["served_after_s"] is not None for e in swaps)
    job = report.get("job") or {}
    healthy, status = report["after"]["readyz"], job.get("status")
    return [
        ["errors", "0", f"{run['errors']:,} of {run['requests']:,}", _met(run["errors"] == 0)],
        [
            "API RSS growth", f"< {MAX_RSS_GROWTH:.0%}",
            f"{start['api_rss_mib']:.0f} -> {end['api_rss_mib']:.0f} MiB ({growth:+.1%})",
            _met(growth is not None and growth < MAX_RSS_GROWTH),
        ],
        ["training job", "succeeded", str(status), _met(status == "succeeded")],
        ["version swaps", "each served", f"{len(swaps)} swaps", _met(swaps_ok)],
        ["healthy after", "/readyz 200", str(healthy), _met(healthy == 200)],
    ]  # fmt: skip


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def event_rows(report: dict[str, Any]) -> list[list[str]]:
    return [
        [f"{e['at_s']:.0f}", e["action"], str(e["answer"]),
         "-" if e.get("served_after_s") is None else f"{e['served_after_s']:.1f}",
         e.get("detail", "")]
        for e in report["events"]
    ]  # fmt: skip


EVENT_COLUMNS = ("at s", "action", "answer", "served after s", "detail")


def failure_line(run: dict[str, Any]) -> str:
    """The failed requests (first few), with when they were sent into the measured run."""
    failures = run.get("failures") or []
    if not failures:
        return "No request failed."
    listed = "; ".join(
        f"{f['kind']} sent at {f['sent_at_s']:.1f} s: {f['outcome']} after {f['latency_ms']:.0f} ms"
        for f in failures[:10]
    )
    return f"Failed requests: {listed}" + (" ..." if len(failures) > 10 else "") + "."


def cpu_line(report: dict[str, Any]) -> str:
    cpu, run = report.get("cpu"), report["run"]
    if not cpu or not run["requests"]:
        return ""
    per = {k: 1000 * v / run["requests"] for k, v in cpu.items()}
    cores = report["machine"].get("usable_cores") or 1
    return (
        f"CPU during the run: load generator {cpu['client_s']:.0f} s "
        f"({per['client_s']:.1f} ms/request), service {cpu['service_s']:.0f} s "
        f"({per['service_s']:.1f} ms/request; the API and the worker's living processes, not "
        "the finished job's), of "
        f"{cores * run['seconds']:.0f} core-seconds on {cores} cores."
    )


def fd_line(report: dict[str, Any]) -> str:
    change = report.get("api_fd_change")
    if change is None:
        return ""
    if not change:
        return "The API's processes held the same descriptors at the end as at the start."
    listed = ", ".join(f"{n:+d} {target}" for target, n in change.items())
    return f"API descriptors at the end against the start: {listed}."


def render(report: dict[str, Any]) -> str:
    run, warmup = report["run"], report["warmup"]
    mix = ", ".join(f"{name} {weight:.0%}" for name, weight in report["mix"].items())
    return "\n".join(
        [
            f"`python -m service run` (API and worker) on a private copy of the models, "
            f"{report['concurrency']} closed-loop clients (asyncio, a keep-alive connection "
            "each, in the harness process on the same cores) for "
            f"{report['minutes']:g} minutes after a {warmup['seconds']:.0f} s warm-up "
            f"({warmup['requests']:,} requests, not counted); mix: {mix} (`/digit` one canvas "
            f"PNG, `/mpg` one car, `GET /jobs/{{id}}`). Raw outputs: `{report['out']}`.",
            "",
            f"**{run['requests']:,} requests** in {run['seconds']:.0f} s ({run['rps']:.0f}/s), "
            f"**{run['errors']} errors**; {report['logged_errors']} ERROR lines in the service "
            "log.",
            "",
            table(KIND_COLUMNS, kind_rows(run)),
            "",
            failure_line(run),
            "",
            cpu_line(report),
            "",
            "Resources (start = after the warm-up; the API's processes summed, the worker's "
            "process tree):",
            "",
            table(RESOURCE_COLUMNS, resource_rows(report)),
            "",
            fd_line(report),
            "",
            "Admin actions during the run (served after: seconds until `GET /models/{name}` "
            "showed the new version; for the job, counted from its end):",
            "",
            table(EVENT_COLUMNS, event_rows(report)),
            "",
            table(("target", "wanted", "measured", "verdict"), verdicts(report)),
        ]
    )
