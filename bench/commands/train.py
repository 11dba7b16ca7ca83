"""Seconds per epoch and time to the accuracy bar of the digit models on this machine.

Two sources, each row saying which:

* **measured now**: the default digit CNN and the classic MLP (`architecture=mlp`) trained here,
  each in its own process through the training package (`bench.training_run`), epochs timed
  one by one. `--epochs` and `--max-train-samples` make short runs; their figures are then
  those of the short run, not of the default. `--seeds N` runs the whole default command
  (training and export) with seeds 0..N-1 and reports the mean test accuracy over them.
* **bundled metadata**: the served versions in `--models-dir` (digit and mpg), read from their
  `metadata.json` (training time, per-epoch history, test metrics) without retraining. The
  history has no per-epoch times, so seconds per epoch there is the training time over the
  epochs run, and the time to the bar is that average times the epoch that first reached it.

The bar: 99.5% MNIST test accuracy (mpg: test MAE at most 1.65). Per epoch only the validation
accuracy is known (the held-out tail of the training set), so "time to bar" is when validation
accuracy first reached it; the test figure is the final model's. Writes the `train` section.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import REPO, options
from bench.results import Section, table
from bench.servers import child_env

DIGIT_BAR = 0.995
MPG_BAR_MAE = 1.65
COLUMNS = (
    "model", "source", "device", "epochs", "train rows", "s/epoch", "first epoch s",
    "to bar (val)", "best val acc", "test", "total s",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    parser.add_argument(
        "--architectures",
        type=_runs,
        default="cnn,mlp",
        help="digit models to train now, each as NAME or NAME:EPOCHS (default cnn,mlp at their "
        "default epochs; '' for none)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="for every architecture")
    parser.add_argument("--max-train-samples", type=int, default=None, help="first N rows only")
    parser.add_argument("--no-metadata", action="store_true", help="leave out bundled versions")
    parser.add_argument("--bar", type=float, default=DIGIT_BAR, help="digit accuracy bar (0.995)")
    parser.add_argument(
        "--seeds", type=int, default=0, help="also run the whole default command, seeds 0..N-1"
    )


def run(args: argparse.Namespace) -> list[Section]:
    rows, measured, seeded = [], [], []
    if not args.no_metadata:
        rows += [metadata_row(meta, args.bar) for meta in bundled(args.models_dir).values()]
    for architecture, epochs in args.architectures:
        overrides: dict[str, Any] = {"architecture": architecture}
        if epochs or args.epochs:
            overrides["epochs"] = epochs or args.epochs
        if args.max_train_samples:
            overrides["max_train_samples"] = args.max_train_samples
        measured.append(measure(architecture, overrides, args.run_dir))
    for seed in range(args.seeds):
        seeded.append(measure(f"cnn default, seed {seed}", {"seed": seed}, args.run_dir, True))
    rows += [measured_row(result, args.bar) for result in measured + seeded]
    (args.run_dir / "train.json").write_text(json.dumps(measured + seeded, indent=2))
    text = [
        f'Bar: {args.bar:.1%} accuracy (digit), test MAE <= {MPG_BAR_MAE} (mpg). "measured now" '
        'rows were trained by this command; "metadata" rows are read from the bundled '
        "version's `metadata.json` (seconds per epoch there is the training time over the "
        "epochs run, and the time to the bar that average times the epoch that first reached "
        'it). "to bar (val)": first epoch whose validation accuracy (held-out tail of the '
        'training set) reached the bar; "test": the final model on the standard test set.',
        "",
        table(COLUMNS, rows),
    ]
    if seeded:
        text += ["", seeds_summary(seeded, args.bar)]
    return [Section("train", "\n".join(text))]


def _runs(text: str) -> list[tuple[str, int | None]]:
    """`cnn:2,mlp` -> [("cnn", 2), ("mlp", None)]."""
    runs: list[tuple[str, int | None]] = []
    for item in options.csv(text):
        name, _, epochs = item.partition(":")
        if name not in ("cnn", "mlp"):
            raise argparse.ArgumentTypeError(f"unknown architecture {name!r}: cnn or mlp")
        runs.append((name, int(epochs) if epochs else None))
    return runs


def measure(
    label: str, overrides: dict[str, Any], out: Path, export: bool = False
) -> dict[str, Any]:
    """Trains one digit recipe in a child process; returns what `bench.training_run` wrote."""
    result_path = out / f"train-{len(list(out.glob('train-*.json')))}.json"
    command = [sys.executable, "-m", "bench.training_run", "--json", str(result_path)]
    command += ["--set", json.dumps(overrides)] + (["--export"] if export else [])
    print(f"training digit: {label} {json.dumps(overrides)} ...", flush=True)
    load_before = os.getloadavg()[0]
    subprocess.run(command, check=True, cwd=REPO, env=child_env())
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
    short = " (short run)" if result["hyperparameters"].get("max_train_samples") else ""
    exported = ", exported" if result.get("exported") else ""
    load = f"load {result['load_before']:.1f}->{result['load_after']:.1f}"
    return [
        f"digit {result.get('label') or result['architecture']}",
        f"measured now{short}{exported}, {load}", result["device"], str(len(epochs)),
        f"{result['train_samples']:,}", f"{steady:.1f}", f"{times[0]:.1f}",
        _time_to_bar(epochs, bar), _best(epochs), f"acc {result['test_accuracy']:.2%}",
        f"{result['wall_seconds']:,.0f}",
    ]  # fmt: skip


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
    epochs = [
        {"epoch": i, "val_accuracy": record.get("val_accuracy"), "elapsed_s": per_epoch * i}
        for i, record in enumerate(history, start=1)
    ]
    architecture = meta["hyperparameters"].get("architecture", "cnn")
    return [
        f"digit {architecture}", source, meta["device"], str(len(history)),
        f"{meta.get('train_samples', 0):,}", f"{per_epoch:.1f} (avg)", "n/a",
        _time_to_bar(epochs, bar, estimated=True), _best(epochs), f"acc {metrics['accuracy']:.2%}",
        f"{seconds:,.0f}",
    ]  # fmt: skip


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
