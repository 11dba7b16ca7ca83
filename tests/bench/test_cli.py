"""`python -m bench`: every module of `bench.commands` is a command, the options every command
shares, and what it publishes; `figure` end to end on its one input."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest
from PIL import Image

import bench.commands
from bench.__main__ import main, parser
from bench.commands.figure import LABELS, TILE
from bench.results import Section, publish, table


def test_every_command_module_is_listed_with_its_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out
    names = [m.name for m in pkgutil.iter_modules(bench.commands.__path__)]
    expected = {"serve", "sweep", "soak", "abuse", "uploads", "preprocess", "train", "figure"}
    assert expected <= set(names)
    for name in names:
        module = __import__(f"bench.commands.{name}", fromlist=["run"])
        assert callable(module.add_arguments) and callable(module.run)
        assert name in listing and module.__doc__.splitlines()[0][:40] in listing


def test_every_command_gets_the_shared_options() -> None:
    top = parser()
    for name in ("serve", "abuse", "figure"):
        args = top.parse_args([name, "--out", "/tmp/x", "--write-results"])
        assert (args.out, args.write_results) == (Path("/tmp/x"), True)
    serve = top.parse_args(["serve", "--concurrency", "1,32", "--set", "PERCEPTRON_WORKERS=1"])
    assert serve.concurrency == (1, 32) and serve.set == [("PERCEPTRON_WORKERS", "1")]


def test_an_unknown_command_or_bad_setting_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["overhead"], ["serve", "--set", "no-equals-sign"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "PERCEPTRON_X=VALUE" in capsys.readouterr().err


def test_publish_stamps_measured_sections_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nprose\n\n<!-- bench:serve -->\nold\n<!-- /bench:serve -->\n")
    sections = [Section("serve", "new"), Section("targets", "derived", stamped=False)]
    publish(sections, "Measured now.", path)
    text = path.read_text()
    assert text.startswith("# Results\n\nprose\n") and "old" not in text
    assert "<!-- bench:serve -->\nMeasured now.\n\nnew\n<!-- /bench:serve -->" in text
    assert text.endswith("<!-- bench:targets -->\nderived\n<!-- /bench:targets -->\n")


def test_tables_align_labels_left_and_figures_right() -> None:
    assert table(("name", "kind", "req/s"), [["a", "bb", "5"], ["ccc", "d", "1,000"]]) == (
        "| name | kind | req/s |\n"
        "|------|------|------:|\n"
        "| a    | bb   |     5 |\n"
        "| ccc  | d    | 1,000 |"
    )
    empty = "| request | c | req/s |\n|---------|---|------:|"
    assert table(("request", "c", "req/s"), []) == empty  # nothing measured: the head alone


def test_figure_shows_every_step(tmp_path: Path, bench_data) -> None:
    output = tmp_path / "figure.png"
    assert main(["figure", "--output", str(output), "--out", str(tmp_path / "out")]) == 0
    figure = Image.open(output)
    assert figure.height == TILE + 24
    assert figure.width == TILE * len(LABELS) + 8 * (len(LABELS) - 1)
    # The last tile is what the model saw: a digit, bright on black, not an empty square.
    last = figure.crop((figure.width - TILE, 0, figure.width, TILE)).convert("L")
    low, high = last.getextrema()
    assert low == 0 and high > 200
