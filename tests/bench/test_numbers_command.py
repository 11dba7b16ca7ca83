"""`python -m bench numbers`: the scoring's pure parts, the corpus's layouts, and the command on
a tiny corpus (the figures come from full runs, recorded in bench/RESULTS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import main
from bench.number_scoring import edit_distance
from bench.numbers_corpus import LAYOUTS, make, row_coverage


@pytest.mark.parametrize(
    ("read", "truth", "edits"),
    [("361", "361", 0), ("381", "361", 1), ("36", "361", 1), ("3611", "361", 1), ("", "42", 2)],
)
def test_edit_distance(read: str, truth: str, edits: int) -> None:
    assert edit_distance(read, truth) == edits


def test_layouts_space_the_digits_as_named(mnist) -> None:
    """Spaced digits leave clear columns between them; touching ones none."""
    pair = [mnist.x_test[0], mnist.x_test[1]]
    for layout, gap in (("spaced", True), ("touching", False)):
        rng = np.random.default_rng(0)
        row = row_coverage(pair, layout, 100.0, rng)
        inked = (row > 0.5).any(axis=0)
        first, last = np.flatnonzero(inked)[[0, -1]]
        assert (~inked[first:last]).any() == gap, layout


def test_a_number_is_remade_alike(mnist) -> None:
    digits, labels = mnist.x_test, mnist.y_test
    for layout in LAYOUTS:
        one = make(layout, "paper_png", 3, 5, digits, labels)
        again = make(layout, "paper_png", 3, 5, digits, labels)
        assert one.upload == again.upload and one.text == again.text
        assert 2 <= len(one.text) <= 6 and one.text == "".join(str(labels[i]) for i in one.indices)


@pytest.mark.slow
def test_numbers_reports_each_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bench_data
) -> None:
    out = tmp_path / "out"
    argv = ["numbers", "--count", "2", "--layouts", "spaced,touching", "--conditions", "canvas"]
    assert main([*argv, "--no-mnist", "--no-latency", "--seed", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| spaced" in printed and "| touching" in printed
    (report,) = out.glob("numbers-*/numbers.json")
    results = json.loads(report.read_text())
    assert results["meta"]["seed"] == 4
    assert set(results["layouts"]) == {"spaced", "touching"}
    for row in results["layouts"].values():
        assert row["numbers"] == 2 and 0.0 <= row["accuracy"] <= 1.0
