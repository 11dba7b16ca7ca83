"""`python -m bench train`: seconds per epoch and time to the accuracy bar of the digit models.

Two sources, each row saying which:

* **measured now**: the default digit CNN and the classic MLP (`architecture=mlp`) trained here,
  each in its own process through the training package (`bench.training_run`), epochs timed
  one by one. `--epochs` and `--max-train-samples` make short runs; their figures are then
  those of the short run, not of the default. `--seeds N` runs the whole default command
  (training and export) with seeds 0..N-1; `--levers` times each lever (network size,
  augmentation, batch size, XLA, threads, backend) against the default recipe in the same
  command, on a slice of the data.
* **bundled metadata**: the served versions in `--models-dir` (digit and mpg), read from their
  `metadata.json` (training time, per-epoch history, test metrics) without retraining. The
  history has no per-epoch times, so seconds per epoch there is the training time over the
  epochs run, and the time to the bar is that average times the epoch that first reached it.

The bar is the issue's: 99.5% MNIST test accuracy (mpg: test MAE at most 1.65). Per epoch only
the validation accuracy is known (the held-out tail of the training set), so "time to bar" is
when validation accuracy first reached it; the test figure is the final model's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import machine
from bench.report import markdown_table, replace_section, text_table

DIGIT_BAR = 0.995
MPG_BAR_MAE = 1.65
REPO = Path(__file__).resolve().parent.parent
COLUMNS = (
    "model", "source", "device", "epochs", "train rows", "s/epoch", "first epoch s",
    "to bar (val)", "best val acc", "test", "total s",
)  # fmt: skip


def measure(
    label: str,
    overrides: dict[str, Any],
    out: Path,
    *,
    env: dict[str, str] | None = None,
    export: bool = False,
) -> dict[str, Any]:
    """Trains one digit recipe in a child process; returns what `bench.training_run` wrote."""
    result_path = out / f"train-{len(list(out.glob('train-*.json')))}.json"
    command = [sys.executable, "-m", "bench.training_run", "--json", str(result_path)]
    command += ["--set", json.dumps(overrides)] + (["--export"] if export else [])
    child_env = {**os.environ, **(env or {})}
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), child_env.get("PYTHONPATH")])
    )
    print(f"training digit: {label} {json.dumps(overrides)} {env or ''} ...", flush=True)
    load_before = os.getloadavg()[0]
    subprocess.run(command, check=True, cwd=REPO, env=child_env)
    measured: dict[str, Any] = json.loads(result_path.read_text())
    measured["label"] = label
    measured["load_before"] = round(load_before, 2)
    measured["load_after"] = round(os.getloadavg()[0], 2)
    return measured


def _time_to_bar(epochs: list[dict[str, Any]], bar: float, *, estimated: bool = False) -> str:
    for epoch in epochs:
        if (epoch.get("val_accuracy") or 0) >= bar:
            return f"{'~' if estimated else ''}{epoch['elapsed_s']:,.0f} s (epoch {epoch['epoch']})"
    return "not reached"


def _best(epochs: list[dict[str, Any]]) -> str:
    scored = [e for e in epochs if e.get("val_accuracy") is not None]
    if not scored:
        return "n/a"
    best = max(scored, key=lambda e: e["val_accuracy"])
    return f"{best['val_accuracy']:.2%} (epoch {best['epoch']})"


def measured_row(result: dict[str, Any], bar: float) -> list[str]:
    epochs = result["epochs"]
    times = [e["seconds"] for e in epochs]
    # The first epoch also builds the graph; the steady rate is the median of the others.
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    hp = result["hyperparameters"]
    short = " (short run)" if hp.get("max_train_samples") else ""
    exported = ", exported" if result.get("exported") else ""
    load = f"load {result['load_before']:.1f}->{result['load_after']:.1f}"
    return [
        f"digit {result.get('label') or result['architecture']}",
        f"measured now{short}{exported}, {load}",
        result["device"],
        str(len(epochs)),
        f"{result['train_samples']:,}",
        f"{steady:.1f}",
        f"{times[0]:.1f}",
        _time_to_bar(epochs, bar),
        _best(epochs),
        f"acc {result['test_accuracy']:.2%}",
        f"{result['wall_seconds']:,.0f}",
    ]


def bundled(models_dir: Path) -> dict[str, dict[str, Any]]:
    """The served version's metadata of each model, by name (models with none are left out)."""
    from training import versions

    found = {}
    for name in ("digit", "mpg"):
        version = versions.served_version(models_dir, name)
        if version is None:
            continue
        meta = versions.read_metadata(versions.version_dir(models_dir, name, version))
        if meta:
            found[name] = meta
    return found


def metadata_row(meta: dict[str, Any], bar: float) -> list[str]:
    history = meta.get("history") or []
    seconds = float(meta["training_seconds"])
    per_epoch = seconds / len(history) if history else float("nan")
    metrics = meta["metrics"]
    source = f"v{meta['version']} metadata"
    if meta["model"] == "mpg":
        members = meta["hyperparameters"].get("ensemble_size", 1)
        met = "meets" if metrics["mae"] <= MPG_BAR_MAE else "misses"
        return [
            f"mpg ({members}-member ensemble)", source, meta["device"], str(len(history)),
            f"{meta.get('train_samples', 0):,}", f"{per_epoch:.2f} (avg)", "n/a",
            f"n/a (bar MAE <= {MPG_BAR_MAE}: {met})", "n/a", f"MAE {metrics['mae']:.3f}",
            f"{seconds:,.0f}",
        ]  # fmt: skip
    epochs = []
    for index, record in enumerate(history, start=1):
        epochs.append(
            {"epoch": index, "val_accuracy": record.get("val_accuracy"),
             "elapsed_s": per_epoch * index}
        )  # fmt: skip
    architecture = meta["hyperparameters"].get("architecture", "cnn")
    return [
        f"digit {architecture}", source, meta["device"], str(len(history)),
        f"{meta.get('train_samples', 0):,}", f"{per_epoch:.1f} (avg)", "n/a",
        _time_to_bar(epochs, bar, estimated=True), _best(epochs), f"acc {metrics['accuracy']:.2%}",
        f"{seconds:,.0f}",
    ]  # fmt: skip


LEVERS: tuple[tuple[str, dict[str, Any], dict[str, str]], ...] = (
    ("default recipe (baseline)", {}, {}),
    ("previous network: 32-64 filters", {"conv_filters": [32, 64]}, {}),
    ("no augmentation", {"augment": False}, {}),
    ("batch 64", {"batch_size": 64}, {}),
    ("batch 256", {"batch_size": 256}, {}),
    # TensorFlow cannot XLA-compile the augmentation's image transform: XLA is timed without it.
    ("no augmentation, jit_compile (XLA)", {"augment": False, "jit_compile": True}, {}),
    ("1 intra-op thread", {}, {"TF_NUM_INTRAOP_THREADS": "1"}),
    ("JAX backend", {}, {"KERAS_BACKEND": "jax"}),
)
"""Each lever changes one thing in the default recipe; timed on a slice of the training set."""
LEVER_COLUMNS = (
    "lever", "s/epoch (54k rows)", "ratio to baseline", "first epoch s (54k rows)",
    "CPU s/epoch", "load before->after",
)  # fmt: skip


def lever_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """Steady seconds per 54,000-row epoch (the last epoch; the first compiles) of each lever
    and its ratio to the baseline's, measured in the same command."""

    def per_full_epoch(result: dict[str, Any], seconds: float) -> float:
        return seconds * 54_000 / result["train_samples"]

    baseline = per_full_epoch(results[0], results[0]["epochs"][-1]["seconds"])
    rows = []
    for result in results:
        steady = per_full_epoch(result, result["epochs"][-1]["seconds"])
        first = per_full_epoch(result, result["epochs"][0]["seconds"])
        cpu = per_full_epoch(result, result["cpu_seconds"]) / len(result["epochs"])
        rows.append(
            [
                result["label"], f"{steady:.1f}", f"{steady / baseline:.2f}x", f"{first:.1f}",
                f"{cpu:.1f} (whole run, per epoch)",
                f"{result['load_before']:.1f}->{result['load_after']:.1f}",
            ]
        )  # fmt: skip
    return rows


def earlier_runs(folder: Path) -> list[dict[str, Any]]:
    """The exported whole-command runs an earlier `--seeds` run saved in `folder`, labelled as
    such; the load is the range seen at the epochs' ends."""
    runs = []
    for path in sorted(folder.glob("train-*.json")):
        result = json.loads(path.read_text())
        if not result.get("exported"):
            continue
        loads = [e["load"] for e in result["epochs"]]
        seed = result["hyperparameters"]["seed"]
        result["label"] = f"cnn default, seed {seed} (earlier run: {folder.name})"
        result["load_before"], result["load_after"] = min(loads), max(loads)
        runs.append(result)
    return runs


def seeds_summary(results: list[dict[str, Any]], bar: float) -> str:
    tests = [r["test_accuracy"] for r in results]
    walls = [r["wall_seconds"] for r in results]
    reached = sum(1 for t in tests if t >= bar)
    sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
    return (
        f"Default recipe over seeds {', '.join(str(r['hyperparameters']['seed']) for r in results)}"
        f": test accuracy {statistics.mean(tests):.2%} ± {sd:.2%} (each: "
        + ", ".join(f"{t:.2%}" for t in tests)
        + f"; {reached}/{len(tests)} at or above {bar:.1%}); whole command (data load, training,"
        f" test evaluation, export) {statistics.mean(walls):,.0f} s on average (each: "
        + ", ".join(f"{w:,.0f} s" for w in walls)
        + ")."
    )


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    return "\n".join(
        [
            f"Measured {m['date']} on {machine.summary_line(m)}; load average before "
            f"{m['load_average'][0]:.2f}."
            + (" Also running: " + "; ".join(report["others"]) if report["others"] else ""),
            "",
            f"Command: `{report['command']}`. Bar: {DIGIT_BAR:.1%} accuracy (digit), test MAE "
            f'<= {MPG_BAR_MAE} (mpg). "measured now" rows were trained by this command; '
            '"metadata" rows are read from the bundled version\'s `metadata.json` (seconds per '
            "epoch there is the training time over the epochs run, and the time to the bar that "
            'average times the epoch that first reached it). "to bar (val)": first epoch whose '
            'validation accuracy (held-out tail of the training set) reached the bar; "test": '
            "the final model on the standard test set.",
            "",
            markdown_table(COLUMNS, report["rows"]),
            *(["", report["seeds_summary"]] if report.get("seeds_summary") else []),
            *(
                [
                    "",
                    f"Levers, one at a time ({report['lever_rows_used']:,} training rows, "
                    f"{report['lever_epochs']} epochs each, seconds scaled to 54,000 rows; "
                    "steady = last epoch):",
                    "",
                    markdown_table(LEVER_COLUMNS, report["levers"]),
                ]
                if report.get("levers")
                else []
            ),
        ]
    )


def _runs(text: str) -> list[tuple[str, int | None]]:
    """`cnn:2,mlp` -> [("cnn", 2), ("mlp", None)]."""
    runs: list[tuple[str, int | None]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, epochs = item.partition(":")
        if name not in ("cnn", "mlp"):
            raise argparse.ArgumentTypeError(f"unknown architecture {name!r}: cnn or mlp")
        runs.append((name, int(epochs) if epochs else None))
    return runs


def main(argv: list[str], *, results_file: Path, out: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench train", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--architectures",
        type=_runs,
        default="cnn,mlp",
        help="digit models to train now, each as NAME or NAME:EPOCHS (default cnn,mlp at their "
        "default epochs; '' for none)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="for every architecture not given its own (default: each one's default)",
    )
    parser.add_argument(
        "--max-train-samples",
        type=int,
        default=None,
        help="train on the first N rows only (short runs)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=REPO / "models",
        help="bundled versions read (default models/)",
    )
    parser.add_argument(
        "--no-metadata", action="store_true", help="leave out the bundled versions' figures"
    )
    parser.add_argument(
        "--bar", type=float, default=DIGIT_BAR, help="digit accuracy bar (default 0.995)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=0,
        help="also run the whole default command (exported) with seeds 0..N-1",
    )
    parser.add_argument(
        "--levers", action="store_true", help="time each lever against the default recipe"
    )
    parser.add_argument("--lever-rows", type=int, default=6400, help="rows per lever run")
    parser.add_argument("--lever-epochs", type=int, default=2, help="epochs per lever run")
    parser.add_argument(
        "--include-runs",
        type=Path,
        default=None,
        help="also report the whole-command runs (--seeds) saved in this earlier bench/out folder",
    )
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    run_out = out / f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    run_out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": "python -m bench train " + " ".join(argv),
        "machine": machine.describe(),
        "others": machine.competing_work(),
        "rows": [],
        "measured": [],
    }
    if report["others"]:
        print("warning: also running; timings will be slow:\n  " + "\n  ".join(report["others"]))
    if not options.no_metadata:
        for meta in bundled(options.models_dir).values():
            report["rows"].append(metadata_row(meta, options.bar))
    for architecture, epochs in options.architectures:
        overrides: dict[str, Any] = {"architecture": architecture}
        if epochs or options.epochs:
            overrides["epochs"] = epochs or options.epochs
        if options.max_train_samples:
            overrides["max_train_samples"] = options.max_train_samples
        result = measure(architecture, overrides, run_out)
        report["measured"].append(result)
        report["rows"].append(measured_row(result, options.bar))
    seeded = [] if options.include_runs is None else earlier_runs(options.include_runs)
    for result in seeded:
        report["rows"].append(measured_row(result, options.bar))
    for seed in range(options.seeds):
        result = measure(f"cnn default, seed {seed}", {"seed": seed}, run_out, export=True)
        seeded.append(result)
        report["rows"].append(measured_row(result, options.bar))
    if seeded:
        report["seeds_summary"] = seeds_summary(seeded, options.bar)
    if options.levers:
        short = {"max_train_samples": options.lever_rows, "epochs": options.lever_epochs}
        levers = [
            measure(label, {**short, **overrides}, run_out, env=env)
            for label, overrides, env in LEVERS
        ]
        report["measured"] += levers
        report["levers"] = lever_rows(levers)
        report["lever_rows_used"] = levers[0]["train_samples"]
        report["lever_epochs"] = options.lever_epochs
    (run_out / "train.json").write_text(json.dumps(report, indent=2))
    print()
    print(text_table(COLUMNS, report["rows"]))
    if report.get("seeds_summary"):
        print(report["seeds_summary"])
    if report.get("levers"):
        print(text_table(LEVER_COLUMNS, report["levers"]))
    if options.write_results:
        replace_section(results_file, "train", render_markdown(report))
        print(f"\nwritten to {results_file}")
    return 0
