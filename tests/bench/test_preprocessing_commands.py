"""`python -m bench figure`, `preprocess` and `overhead` on the smallest inputs: the files
and tables they write (the figures themselves come from full runs, in bench/RESULTS.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from bench.__main__ import main
from bench.preprocessing_figure import LABELS, TILE


def test_figure_shows_every_step(tmp_path: Path, bench_data) -> None:
    output = tmp_path / "figure.png"
    assert main(["figure", "--output", str(output)]) == 0
    figure = Image.open(output)
    assert figure.height == TILE + 24
    assert figure.width == TILE * len(LABELS) + 8 * (len(LABELS) - 1)
    # The last tile is what the model saw: a digit, bright on black, not an empty square.
    last = figure.crop((figure.width - TILE, 0, figure.width, TILE)).convert("L")
    low, high = last.getextrema()
    assert low == 0 and high > 200


@pytest.mark.slow
def test_preprocess_times_now_before_and_decode(
    capsys: pytest.CaptureFixture[str], bench_data
) -> None:
    # HEAD as the baseline: a clone of any depth has it.
    assert main(["preprocess", "--count", "1", "--repeats", "1", "--before", "HEAD"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line for line in table[1:]}
    assert any("phone photo" in name for name in rows)
    for name, line in rows.items():
        if name.startswith("---"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        decode, before, now = (float(cells[i]) for i in (2, 3, 4))
        # One file timed once: no order between the times holds for sure on a busy machine.
        assert decode > 0 and now > 0 and before > 0, line
        assert re.fullmatch(r"\d+\.\d\d", cells[5]), line


@pytest.mark.slow
def test_overhead_measures_this_checkout_and_a_commit(
    capsys: pytest.CaptureFixture[str], bench_data
) -> None:
    assert (
        main(
            [
                "overhead",
                "--against",
                "HEAD",
                "--requests",
                "mpg-one:2",
                "--count",
                "40",
                "--rounds",
                "1",
            ]
        )
        == 0
    )
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line for line in table[1:]}
    assert set(rows) == {"HEAD", "this checkout"}
    for line in rows.values():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rps, cpu, loop = (float(cell.replace(",", "")) for cell in cells[3:])
        assert rps > 0 and cpu >= loop > 0
