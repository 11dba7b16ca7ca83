"""The benchmark harness's pure parts: the wrk parser, ratios and targets, and the train and
soak reports, on canned outputs (the runs themselves are `python -m bench ...`, not tests)."""

from __future__ import annotations

from bench import load, serve_report, soak_report
from bench.commands import train

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/digit
BENCH-JSON {"requests": 1000, "duration_us": 10000000, "non_2xx": 10, "socket_errors": 0, \
"p50_us": 2000, "p95_us": 5000, "p99_us": 9000, "mean_us": 2500.0, "max_us": 12000}
"""


def test_wrk_output_parses() -> None:
    parsed = load.parse_wrk(WRK_OUTPUT)
    assert (parsed.requests, parsed.errors) == (1000, 10)
    assert parsed.rps == 99.0  # errors are not throughput
    assert (parsed.p50_ms, parsed.p99_ms) == (2.0, 9.0)


def _run(
    payload: str, concurrency: int, rps: float, p50: float = 1.0, errors: int = 0
) -> dict[str, object]:
    endpoint = "/mpg" if payload.startswith("mpg") else "/digit"
    return {"payload": payload, "endpoint": endpoint, "items": 1, "concurrency": concurrency,
            "rps": rps, "items_per_s": rps, "p50_ms": p50, "p95_ms": 1.5 * p50, "p99_ms": 2 * p50,
            "cpu_ms_per_request": 3.0, "errors": errors,
            "requests": int(rps * 10) + errors}  # fmt: skip


def _results() -> dict[str, object]:
    return {
        "compute": {
            "digit": [
                {"rows": 1, "ms_per_call": 2.0, "rows_per_s": 500.0},
                {"rows": 32, "ms_per_call": 20.0, "rows_per_s": 1600.0},
            ],
            "mpg": [{"rows": 1, "ms_per_call": 0.5, "rows_per_s": 2000.0}],
            "preprocess": {"digit-canvas": {"median_ms": 1.0, "mean_ms": 1.1}},
        },
        "servers": {
            "ours": {
                "runs": [
                    _run("digit-canvas", 32, 600.0),
                    _run("digit-canvas", 1, 0, 5.0),
                    _run("mpg-one", 32, 1000.0),
                ]
            },
            "bare": {
                "runs": [
                    _run("digit-canvas", 32, 2000.0),
                    _run("digit-canvas", 1, 0, 0.5),
                    _run("mpg-one", 32, 3000.0),
                ]
            },
            "ours-1": {"runs": [_run("digit-canvas", 32, 400.0)]},
            "bentoml": {
                "runs": [_run("digit-canvas", 32, 250.0, errors=40), _run("digit-canvas", 1, 0)]
            },
        },
    }


def test_ratios_and_targets() -> None:
    results = _results()
    digit = serve_report.ratios(results)[0]
    assert digit["ours_over_bare"] == 0.3
    assert digit["ours_over_compute"] == 600.0 / 1600.0
    verdicts = {t.name: t.met for t in serve_report.targets(results)}
    assert verdicts["/digit digit-canvas c=32 vs ceilings"] is False  # 600 < 50% of 1600
    assert verdicts["/digit digit-canvas c=1 p50"] is True  # 5.0 <= 0.5 + 2 x 2.0 + 1.0
    assert verdicts["/digit digit-canvas c=32 vs bare upload"] is False  # 30% < 40% of bare
    assert verdicts["/digit digit-canvas c=1 p50 at most 1.5 ms"] is False  # 5.0 ms
    assert verdicts["/mpg one car c=32"] is False  # 33% of bare
    assert verdicts["/digit digit-canvas c=32 vs BentoML"] is True  # 600 >= 2 x 250
    assert verdicts["/digit digit-canvas c=1 vs BentoML"] is None  # BentoML's 0 req/s: no ratio
    assert verdicts["errors"] is True  # ours had none; BentoML's do not count against us
    assert verdicts["memory"] is None  # not measured here


def test_the_serving_targets_are_met_at_their_bounds() -> None:
    results = _results()
    ours = results["servers"]["ours"]["runs"]  # type: ignore[index]
    ours[0]["rps"], ours[1]["p50_ms"], ours[2]["rps"] = 800.0, 1.5, 2400.0
    verdicts = {t.name: t.met for t in serve_report.targets(results)}
    assert verdicts["/digit digit-canvas c=32 vs bare upload"] is True  # 40% of 2,000
    assert verdicts["/digit digit-canvas c=1 p50 at most 1.5 ms"] is True
    assert verdicts["/mpg one car c=32"] is True  # 80% of 3,000


def test_scaling_and_peer_rows_pair_runs_of_the_same_request() -> None:
    results = _results()
    (scaled,) = serve_report.scaling(results)
    assert scaled["all"]["rps"] == 600.0 and scaled["speedup"] == 1.5
    rows = {(row[0], row[1]): row for row in serve_report.peer_rows(results)}
    assert rows[("digit-canvas", "32")][4] == "2.40x"
    assert rows[("digit-canvas", "32")][5] == "40 of 2,540 (1.6%)"


def test_the_serve_section_has_a_row_per_run_and_the_targets_a_verdict_each() -> None:
    results = {**_results(), "meta": {"tool": "wrk", "seconds": 10, "warmup_s": 3,
                                      "models_dir": "models", "env": {}, "out": "out"}}  # fmt: skip
    for server in results["servers"].values():
        for key in ("rss_mib_ready", "rss_mib_end", "peak_rss_mib"):
            server[key] = 100.0
    text = serve_report.render(results)
    runs = sum(len(server["runs"]) for server in results["servers"].values())
    cells = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]
    assert sum(1 for row in cells if row[0] in results["servers"] and len(row) == 10) == runs
    assert ["digit", "32", "20.000", "1,600"] in cells  # the in-process model table
    assert any(row[:5] == ["digit-canvas", "32", "400", "600", "1.50x"] for row in cells)  # scaling
    assert ["digit-canvas", "32", "600", "250", "2.40x", "40 of 2,540 (1.6%)"] in cells  # BentoML
    verdicts = serve_report.render_targets(results, None).splitlines()[2:]
    assert len(verdicts) == len(serve_report.targets(results))
    assert all(
        line.endswith(("**met** |", "**NOT met** |", "**not measured** |")) for line in verdicts
    )


def test_train_rows_from_bundled_metadata() -> None:
    meta = {
        "model": "digit", "version": 1, "device": "CPU", "training_seconds": 300.0,
        "train_samples": 54000, "hyperparameters": {"architecture": "cnn"},
        "metrics": {"accuracy": 0.9951},
        "history": [{"val_accuracy": 0.99}, {"val_accuracy": 0.996}, {"val_accuracy": 0.995}],
    }  # fmt: skip
    row = dict(zip(train.COLUMNS, train.metadata_row(meta, 0.995), strict=True))
    assert row["s/epoch"] == "100.0 (avg)"
    assert row["to bar (val)"] == "~200 s (epoch 2)"
    assert row["best val acc"] == "99.60% (epoch 2)" and row["test"] == "acc 99.51%"


def test_soak_report_verdicts() -> None:
    sample = {"api_rss_mib": 500.0, "api_fds": 70, "worker_rss_mib": 80.0, "worker_fds": 9}
    kind = {"requests": 10, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "max_ms": 4.0}
    run = {**kind, "seconds": 60.0, "errors": 0, "rps": 0.2,
           "kinds": {"digit": {**kind, "outcomes": {"200": 10}}}}  # fmt: skip
    result = {
        "run": run, "warmup": run, "ready": sample, "start": sample,
        "end": {**sample, "api_rss_mib": 560.0}, "api_rss_growth": 0.12,
        "events": [{"at_s": 6, "action": "pin", "answer": 200, "swap": True,
                    "served_after_s": 0.2}],
        "job": {"status": "succeeded"}, "after": {"readyz": 200}, "minutes": 5,
    }  # fmt: skip
    verdicts = {row[0]: row[-1] for row in soak_report.verdicts(result)}
    assert verdicts == {
        "errors": "met", "API RSS growth": "NOT met",
        "training job": "met", "version swaps": "met", "healthy after": "met",
    }  # fmt: skip
    # The serve targets' memory verdict is the soak's RSS growth: 12% is over 10%.
    assert serve_report.memory_target(result).met is False
    assert serve_report.memory_target({**result, "minutes": 1}).met is None  # too short
