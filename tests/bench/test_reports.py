"""The benchmark harness's pure parts: load-tool parsers, ratios and targets, and the train and
soak reports, on canned outputs (the runs themselves are `python -m bench ...`, not tests)."""

from __future__ import annotations

from pathlib import Path

from bench import load, report, soak_report, train

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/digit
BENCH-JSON {"requests": 1000, "duration_us": 10000000, "non_2xx": 10, "socket_errors": 0, \
"p50_us": 2000, "p95_us": 5000, "p99_us": 9000, "mean_us": 2500.0, "max_us": 12000}
"""

HEY_OUTPUT = """Summary:
  Total:\t10.0000 secs
Latency distribution:
  50% in 0.0020 secs
  95% in 0.0050 secs
  99% in 0.0090 secs
Status code distribution:
  [200]\t990 responses
  [503]\t10 responses
"""


def test_wrk_and_hey_outputs_parse_to_the_same_result() -> None:
    for parsed in (load.parse_wrk(WRK_OUTPUT), load.parse_hey(HEY_OUTPUT)):
        assert (parsed.requests, parsed.errors) == (1000, 10)
        assert parsed.rps == 99.0  # errors are not throughput
        assert (parsed.p50_ms, parsed.p99_ms) == (2.0, 9.0)


def _run(
    payload: str, concurrency: int, rps: float, p50: float = 1.0, errors: int = 0
) -> dict[str, object]:
    endpoint = "/mpg" if payload.startswith("mpg") else "/digit"
    return {"payload": payload, "endpoint": endpoint, "items": 1, "concurrency": concurrency,
            "rps": rps, "items_per_s": rps, "p50_ms": p50, "p99_ms": 2 * p50,
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
            "naive": {"runs": [_run("digit-canvas", 32, 10.0), _run("mpg-one", 32, 100.0)]},
            "ours-1": {"runs": [_run("digit-canvas", 32, 400.0)]},
            "bentoml": {
                "runs": [_run("digit-canvas", 32, 250.0, errors=40), _run("digit-canvas", 1, 0)]
            },
        },
    }


def test_ratios_and_targets_follow_the_issue() -> None:
    results = _results()
    digit = report.ratios(results)[0]
    assert digit["ours_over_bare"] == 0.3 and digit["ours_over_naive"] == 60.0
    assert digit["ours_over_compute"] == 600.0 / 1600.0
    verdicts = {t.name: t.met for t in report.targets(results)}
    assert verdicts["/digit digit-canvas c=32 vs naive"] is True  # 60x >= 20x
    assert verdicts["/digit digit-canvas c=32 vs ceilings"] is False  # 600 < 50% of 1600
    assert verdicts["/digit digit-canvas c=1 p50"] is True  # 5.0 <= 0.5 + 2 x 2.0 + 1.0
    assert verdicts["/mpg one car c=32"] is False  # 33% of bare
    assert verdicts["/mpg one car c=32 vs naive"] is False  # 10x < 20x
    assert verdicts["/digit digit-canvas c=32 vs BentoML"] is True  # 600 >= 2 x 250
    assert verdicts["/digit digit-canvas c=1 vs BentoML"] is None  # BentoML's 0 req/s: no ratio
    assert verdicts["errors"] is True  # ours had none; BentoML's do not count against us
    assert verdicts["memory"] is None  # not measured here


def test_scaling_and_peer_rows_pair_runs_of_the_same_request() -> None:
    results = _results()
    (scaled,) = report.scaling(results)
    assert scaled["all"]["rps"] == 600.0 and scaled["speedup"] == 1.5
    rows = {(row[0], row[1]): row for row in report.peer_rows(results)}
    assert rows[("digit-canvas", "32")][4] == "2.40x"
    assert rows[("digit-canvas", "32")][5] == "40 of 2,540 (1.6%)"


def test_replace_section_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nprose\n")
    report.replace_section(path, "serve", "first")
    report.replace_section(path, "serve", "second")
    text = path.read_text()
    assert text.startswith("# Results\n\nprose\n") and "second" in text and "first" not in text


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
        "job": {"status": "succeeded"}, "after": {"readyz": 200},
    }  # fmt: skip
    verdicts = {row[0]: row[-1] for row in soak_report.verdicts(result)}
    assert verdicts == {
        "errors": "met", "API RSS growth": "NOT met",
        "training job": "met", "version swaps": "met", "healthy after": "met",
    }  # fmt: skip
