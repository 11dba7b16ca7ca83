"""`python -m bench uploads` on a tiny corpus: the section, the JSON and the saved files (the
figures themselves come from full runs, recorded in bench/RESULTS.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import main


def test_uploads_reports_each_condition_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bench_data
) -> None:
    saved, out = tmp_path / "saved", tmp_path / "out"
    argv = ["uploads", "--count", "3", "--condition", "paper_png", "--condition", "canvas"]
    argv += ["--no-mnist", "--not-digits", "0", "--seed", "4"]
    code = main([*argv, "--save-dir", str(saved), "--out", str(out)])
    assert code == 0

    cells = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ")
    ]
    rows: dict[str, list[str]] = {}
    for row in cells:  # the accuracy table's row, not the refused/flagged table's after it
        if row[0] in ("paper_png", "canvas"):
            rows.setdefault(row[0], row)
    assert set(rows) == {"paper_png", "canvas"}
    assert rows["canvas"][1] == rows["paper_png"][1] == "3"

    (report,) = out.glob("uploads-*/uploads.json")
    results = json.loads(report.read_text())
    assert results["meta"]["seed"] == 4
    assert [r["condition"] for r in results["conditions"]] == ["paper_png", "canvas"]
    for row in results["conditions"]:
        assert row["images"] == 3
        assert row["correct"] + len(row["misread"]) == 3
        assert row["accuracy"] == pytest.approx(row["correct"] / 3)
        assert row["median_ms"] > 0
        assert rows[row["condition"]][2] == f"{row['accuracy']:.2%}"

    for condition in ("paper_png", "canvas"):
        uploads = [p for p in (saved / condition).iterdir() if not p.name.endswith("-seen.png")]
        assert len(uploads) == 3
        for upload in uploads:
            match = re.fullmatch(
                r"\d{4}-test(\d+)-label(\d)-pred(\d|no_digit|unreadable)\.png", upload.name
            )
            assert match, upload.name
            if match.group(3).isdigit():
                assert (saved / condition / upload.name.replace(".png", "-seen.png")).exists()


def test_an_unknown_condition_is_refused_with_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["uploads", "--condition", "watercolour"])
    assert exit_info.value.code == 2
    assert "paper_jpeg" in capsys.readouterr().err


def test_the_validation_split_is_the_one_training_holds_out(bench_data) -> None:
    from bench.uploads_corpus import mnist_validation_digits
    from training import data
    from training.hyperparameters import DigitHyperparameters
    from training.train import _digit_training_rows

    x, y = mnist_validation_digits()
    mnist = data.load_mnist(
        data.locate(data.MNIST_FILE, bench_data.data_dir, bench_data.cache_dir, download=False)
    )
    _, _, (held_x, held_y), extra = _digit_training_rows(DigitHyperparameters(), mnist, None)
    assert len(x) == extra["validation_samples"] == 6000
    assert np.array_equal(x.astype(np.float32) / 255.0, held_x)
    assert np.array_equal(y, held_y)
