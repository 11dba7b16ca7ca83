"""`python -m bench digit_gate` on a tiny gate and corpus: the thresholds chosen on the validation
digits, every set scored, the gate saved (the figures come from full runs, recorded in
bench/RESULTS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import main


@pytest.mark.slow
def test_digit_gate_trains_thresholds_and_scores_each_set(tmp_path: Path, bench_data) -> None:  # type: ignore[no-untyped-def]
    from bench.digit_gate import gate_scores, load_gate

    argv = ["digit_gate", "--train-digits", "400", "--epochs", "1", "--condition", "canvas"]
    argv += ["--count", "3", "--no-mnist", "--not-digits", "4", "--seed", "4"]
    assert main([*argv, "--out", str(tmp_path)]) == 0

    (report,) = tmp_path.glob("digit_gate-*/digit_gate.json")
    results = json.loads(report.read_text())
    assert results["meta"]["train_digits"] == 400
    (run,) = results["runs"]
    assert run["gate"] == "seed 0"
    assert 0 <= run["no_digit_below"] <= run["uncertain_below"] <= 1
    assert [r["condition"] for r in run["results"]] == [
        "canvas",
        "not_a_digit",
        "digit_like_letters",
    ]
    for row in run["results"]:
        assert row["images"] == (3 if row["condition"] == "canvas" else 4)
        doubted = row["no_digit"] + row["unreadable"] + row["flagged"]
        assert 0 <= doubted <= row["images"]

    (saved,) = report.parent.glob("gate-0.keras")
    scores = gate_scores(load_gate(saved).model, np.zeros((2, 28, 28), np.float32))
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
