"""`python -m bench mpg`: the MPG recipe chosen by cross-validation on the 314 standard training
rows, and the chosen default's test MAE over seeds.

* **cross-validation**: each candidate (the default hyperparameters plus a few overrides) is
  trained on 4 of 5 folds of the training rows and scored on the fifth; the test rows are never
  read. Candidates are compared on the mean fold MAE, each as one network (`ensemble_size` 1)
  at a fifth of an ensemble's cost; the shipped recipe averages an ensemble of the winner.
* **test over seeds** (`--test-seeds N`): the schema's default recipe trained on all 314 rows
  with seeds 0..N-1 and scored on the 78 test rows: the figure to report, not to choose by.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import machine
from bench.report import markdown_table, replace_section, text_table

FOLDS = 5
CANDIDATES: dict[str, dict[str, Any]] = {
    "default": {},
    "gallons per 100 miles": {"target_transform": "gallons_per_100_miles"},
    "huber loss": {"loss": "huber"},
    "32-32 units": {"hidden_units": [32, 32]},
}


def cross_validate(overrides: dict[str, Any], seed: int) -> list[float]:
    """The MAE (mpg) on each held-out fold of the standard training rows."""
    import keras

    from service.settings import Settings
    from training import data
    from training.cars import TARGET
    from training.devices import configure_device
    from training.hyperparameters import MpgHyperparameters
    from training.metrics import regression_metrics
    from training.progress import SilentProgress
    from training.train import fit_mpg, predict

    settings = Settings()
    path = data.locate(data.AUTO_MPG_FILE, settings.data_dir, settings.cache_dir)
    train, _ = data.standard_split(data.load_auto_mpg(path))
    hp = MpgHyperparameters.model_validate({"ensemble_size": 1, **overrides, "seed": seed})
    device = configure_device(mixed_precision=hp.mixed_precision)
    folds = np.array_split(np.random.default_rng(seed).permutation(len(train)), FOLDS)
    maes = []
    for held_out in folds:
        keras.backend.clear_session()
        fitted = train.drop(train.index[held_out])
        scored = train.iloc[held_out]
        model, _ = fit_mpg(hp, fitted, device, SilentProgress())
        predictions = predict(model, data.features_of(scored))
        maes.append(regression_metrics(scored[TARGET].to_numpy(), predictions)["mae"])
    return maes


def test_maes(seeds: int) -> list[float]:
    """The default recipe's test MAE for seeds 0..seeds-1."""
    import keras

    from service.settings import Settings
    from training.hyperparameters import MpgHyperparameters
    from training.pipeline import DataPaths, train
    from training.progress import SilentProgress

    settings = Settings()
    paths = DataPaths(settings.data_dir, settings.cache_dir, settings.download_data)
    maes = []
    for seed in range(seeds):
        keras.backend.clear_session()
        hp = MpgHyperparameters(seed=seed)
        trained, _ = train("mpg", hp, paths=paths, observer=SilentProgress())
        maes.append(float(trained.metrics["mae"]))
        print(f"  seed {seed}: test MAE {maes[-1]:.3f}", flush=True)
    return maes


def _spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main(argv: list[str], *, results_file: Path, out: Path) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mpg", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--candidates",
        default=",".join(CANDIDATES),
        help=f"comma-separated names among: {', '.join(CANDIDATES)} ('' for none)",
    )
    parser.add_argument("--cv-seed", type=int, default=0, help="fold split and training seed")
    parser.add_argument("--test-seeds", type=int, default=0, help="default recipe, seeds 0..N-1")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    names = [n.strip() for n in options.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates: {', '.join(unknown)}")
    report: dict[str, Any] = {
        "command": "python -m bench mpg " + " ".join(argv),
        "machine": machine.describe(),
        "cv": {},
        "test": None,
    }
    for name in names:
        began = time.monotonic()
        maes = cross_validate(CANDIDATES[name], options.cv_seed)
        report["cv"][name] = {"overrides": CANDIDATES[name], "fold_maes": maes,
                              "seconds": round(time.monotonic() - began)}  # fmt: skip
        print(f"{name}: CV MAE {_spread(maes)} ({time.monotonic() - began:.0f} s)", flush=True)
    if options.test_seeds:
        report["test"] = test_maes(options.test_seeds)
        print(f"default recipe: test MAE {_spread(report['test'])} over {options.test_seeds} seeds")
    run_out = out / f"mpg-{time.strftime('%Y%m%d-%H%M%S')}"
    run_out.mkdir(parents=True, exist_ok=True)
    (run_out / "mpg.json").write_text(json.dumps(report, indent=2))
    columns = ("candidate", "overrides", "CV MAE (5 folds, mean ± sd)", "seconds")
    rows = [
        [name, json.dumps(r["overrides"]) or "{}", _spread(r["fold_maes"]), str(r["seconds"])]
        for name, r in report["cv"].items()
    ]
    print(text_table(columns, rows))
    if options.write_results:
        replace_section(results_file, "mpg", render_markdown(report, columns, rows))
        print(f"\nwritten to {results_file}")
    return 0


def render_markdown(report: dict[str, Any], columns: tuple[str, ...], rows: list[list[str]]) -> str:
    m = report["machine"]
    lines = [
        f"Measured {m['date']} on {machine.summary_line(m)}; load average before "
        f"{m['load_average'][0]:.2f}. Command: `{report['command']}`.",
        "",
    ]
    if rows:
        lines += [
            f"Cross-validation on the 314 standard training rows ({FOLDS} folds; the test rows "
            "unread): each candidate is the default recipe with the overrides shown.",
            "",
            markdown_table(columns, rows),
            "",
        ]
    if report["test"]:
        maes = report["test"]
        lines.append(
            f"Default recipe (`python -m training mpg --seed N`), test MAE over seeds "
            f"0-{len(maes) - 1}: **{_spread(maes)}** (each: "
            + ", ".join(f"{v:.3f}" for v in maes)
            + ")."
        )
    return "\n".join(lines)
