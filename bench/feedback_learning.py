"""`python -m bench feedback`: does fine-tuning on people's corrections teach the served digit
model a writing style, without costing MNIST accuracy? (issue 13's experiment)

1. The style (`bench.handwriting_style`: a flagged and based "1", a crossed "7", an open "4")
   is drawn in three sets with disjoint seeds: 200 corrections people sent and an
   administrator accepted, a validation set, and a test set read only at the end.
2. The served version (`models/digit/<served>`) is measured on the style and on MNIST.
3. Candidates (`user_samples_repeat` x learning rate) are fine-tuned from the served weights
   with `user_samples=accepted` (the training package's own code path) and judged on the
   validation sets only: the style validation set, and MNIST's last 6,000 training images
   (never trained on: `max_train_samples` keeps the runs to the first rows). The pick is the
   best style accuracy among those losing at most 0.1 points of MNIST validation accuracy.
4. The pick is trained again as a job would run it (`run_training`, `promote=auto`, into a
   copy of the models folder) with each seed, and measured on the style test set and MNIST test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import machine
from bench.handwriting_style import style_set
from bench.report import markdown_table, replace_section

ACCEPTED, VALIDATION, TEST = 1_000_000, 2_000_000, 3_000_000
"""First seeds of the three style sets: no digit is drawn twice."""
NEAT_WOBBLE = 0.04
MNIST_VALIDATION = slice(54_000, 60_000)
MAX_MNIST_DROP = 0.001


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0


def run(options: argparse.Namespace) -> dict[str, Any]:
    import keras

    from training import data, versions
    from training.hyperparameters import DigitHyperparameters, PromotePolicy
    from training.pipeline import DataPaths, run_training, train
    from training.progress import SilentProgress
    from training.served_model import saved_model_probabilities
    from training.settings import TrainingSettings
    from training.train import predict
    from training.user_samples import write_samples_npz

    settings = TrainingSettings()
    models_dir: Path = options.models_dir
    served = versions.served_version(models_dir, "digit")
    if served is None:
        raise SystemExit(f"no served digit version in {models_dir}")
    served_dir = versions.version_dir(models_dir, "digit", served)
    mnist = data.load_mnist(data.locate(data.MNIST_FILE, settings.data_dir, settings.cache_dir))
    mnist_val = (_unit(mnist.x_train[MNIST_VALIDATION]), mnist.y_train[MNIST_VALIDATION])

    accepted = style_set(options.accepted, ACCEPTED)
    style_val = style_set(options.validation, VALIDATION)
    style_test = style_set(options.test, TEST)
    neat_test = style_set(options.test, TEST, wobble=NEAT_WOBBLE)
    work = Path(tempfile.mkdtemp(prefix="perceptron-feedback-"))
    samples_file = work / "user-samples.npz"
    write_samples_npz(samples_file, *accepted)
    paths = DataPaths(settings.data_dir, settings.cache_dir, False, samples_file)

    def served_on(x: np.ndarray, y: np.ndarray) -> float:
        return _accuracy(saved_model_probabilities(served_dir, _unit(x)), y)

    report: dict[str, Any] = {
        "command": options.command,
        "machine": machine.describe(),
        "served_version": served,
        "sizes": {
            "accepted": options.accepted,
            "validation": options.validation,
            "test": options.test,
        },
        "fixed": {"epochs": options.epochs, "max_train_samples": options.max_train_samples},
        "served": {
            "style_test": served_on(*style_test),
            "neat_style_test": served_on(*neat_test),
            "style_validation": served_on(*style_val),
            "mnist_validation": served_on(mnist.x_train[MNIST_VALIDATION], mnist_val[1]),
            "mnist_test": served_on(mnist.x_test, mnist.y_test),
        },
        "candidates": [],
        "final": [],
    }
    print(f"served version {served}: {json.dumps(report['served'])}", flush=True)

    def settings_for(repeat: int, learning_rate: float, seed: int) -> DigitHyperparameters:
        return DigitHyperparameters(
            start_from="served",
            user_samples="accepted",
            user_samples_repeat=repeat,
            learning_rate=learning_rate,
            epochs=options.epochs,
            max_train_samples=options.max_train_samples,
            seed=seed,
        )

    for repeat in options.repeats:
        for learning_rate in options.learning_rates:
            began = time.monotonic()
            keras.backend.clear_session()
            hp = settings_for(repeat, learning_rate, 0)
            trained, _ = train(
                "digit", hp, paths=paths, observer=SilentProgress(), start_from=served_dir
            )
            row = {
                "repeat": repeat,
                "learning_rate": learning_rate,
                "style_validation": _accuracy(
                    predict(trained.model, _unit(style_val[0])), style_val[1]
                ),
                "mnist_validation": _accuracy(predict(trained.model, mnist_val[0]), mnist_val[1]),
                "seconds": round(time.monotonic() - began),
            }
            report["candidates"].append(row)
            print(f"candidate {json.dumps(row)}", flush=True)

    floor = report["served"]["mnist_validation"] - MAX_MNIST_DROP - 1e-9
    allowed = [c for c in report["candidates"] if c["mnist_validation"] >= floor]
    pool = allowed or sorted(report["candidates"], key=lambda c: -c["mnist_validation"])[:1]
    pick = max(pool, key=lambda c: (c["style_validation"], -c["repeat"], -c["learning_rate"]))
    report["pick"] = {
        "repeat": pick["repeat"],
        "learning_rate": pick["learning_rate"],
        "within_mnist_bound": bool(allowed),
    }
    print(f"picked {json.dumps(report['pick'])}", flush=True)

    for seed in range(options.seeds):
        began = time.monotonic()
        keras.backend.clear_session()
        job_models = work / f"models-{seed}"
        shutil.copytree(served_dir, job_models / "digit" / str(served))
        exported = run_training(
            "digit",
            settings_for(pick["repeat"], pick["learning_rate"], seed),
            paths=paths,
            models_dir=job_models,
            observer=SilentProgress(),
            promote=PromotePolicy.auto,
            command=options.command,
        )
        metrics = exported.metadata["metrics"]
        row = {
            "seed": seed,
            "style_test": _accuracy(
                saved_model_probabilities(exported.path, _unit(style_test[0])), style_test[1]
            ),
            "mnist_test": metrics["accuracy"],
            "user_samples_accuracy": metrics["user_samples_accuracy"],
            "user_samples_count": metrics["user_samples_count"],
            "user_samples_trained": metrics["user_samples_trained"],
            "promotion": exported.metadata["promotion"],
            "seconds": round(time.monotonic() - began),
        }
        report["final"].append(row)
        print(f"seed {seed}: {json.dumps(row)}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return report


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in rows)


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    served = report["served"]
    final = report["final"]
    sizes = report["sizes"]
    lines = [
        f"Measured {m['date']} on {machine.summary_line(m)}. Command: `{report['command']}`.",
        "",
        f'The style: a "1" with a flag and a base, a crossed "7", an open "4", drawn on a '
        f"280x280 canvas and preprocessed as `/digit` does (`bench/handwriting_style.py`). "
        f"{sizes['accepted']} accepted corrections, {sizes['validation']} validation and "
        f"{sizes['test']} test digits, from disjoint seeds. Fine-tuning starts from the served "
        f"version {report['served_version']} with `start_from=served user_samples=accepted`, "
        f"{report['fixed']['epochs']} epoch(s) over the first "
        f"{report['fixed']['max_train_samples']} MNIST training images plus the trained "
        "corrections repeated `user_samples_repeat` times.",
        "",
        "Choice on validation (seed 0; style validation set, MNIST's last 6,000 training "
        "images; the test sets unread):",
        "",
        markdown_table(
            ("repeat", "learning rate", "style validation", "MNIST validation", "seconds"),
            [
                [
                    str(c["repeat"]),
                    f"{c['learning_rate']:g}",
                    _pct(c["style_validation"]),
                    _pct(c["mnist_validation"]),
                    str(c["seconds"]),
                ]
                for c in report["candidates"]
            ],
        ),
        "",
        f"Served version before fine-tuning: style validation {_pct(served['style_validation'])}"
        f", MNIST validation {_pct(served['mnist_validation'])}. Picked: repeat "
        f"{report['pick']['repeat']}, learning rate {report['pick']['learning_rate']:g}"
        + ("" if report["pick"]["within_mnist_bound"] else " (none kept MNIST within 0.1 points)")
        + ".",
        "",
        "The pick, trained as a job (`run_training`, `promote=auto`) with each seed:",
        "",
        markdown_table(
            ("model", "style test", "MNIST test", "held-out corrections", "promoted (auto)"),
            [["served", _pct(served["style_test"]), _pct(served["mnist_test"]), "", ""]]
            + [
                [
                    f"fine-tuned, seed {r['seed']}",
                    _pct(r["style_test"]),
                    _pct(r["mnist_test"]),
                    f"{_pct(r['user_samples_accuracy'])} of {r['user_samples_count']} "
                    f"({r['user_samples_trained']} trained on)",
                    "yes" if r["promotion"]["promoted"] else "no",
                ]
                for r in final
            ]
            + [
                [
                    f"fine-tuned, mean of {len(final)}",
                    _pct(_mean(final, "style_test")),
                    _pct(_mean(final, "mnist_test")),
                    _pct(_mean(final, "user_samples_accuracy")),
                    "",
                ]
            ]
            if final
            else [],
        ),
        "",
        f"The served model reads a neat hand of the same style (wobble {NEAT_WOBBLE}) at "
        f"{_pct(served['neat_style_test'])}: it is the hurried hand (wobble 0.1) it misses.",
        "",
        "Promotion reasons: "
        + "; ".join(f"seed {r['seed']}: {r['promotion']['reason']}" for r in final),
    ]
    return "\n".join(lines)


def main(argv: list[str], *, results_file: Path, out: Path, command: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench feedback", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--accepted", type=int, default=200, help="accepted corrections")
    parser.add_argument("--validation", type=int, default=300, help="style validation digits")
    parser.add_argument("--test", type=int, default=600, help="style test digits")
    parser.add_argument(
        "--repeats",
        type=lambda t: [int(p) for p in t.split(",")],
        default=[5, 20],
        help="user_samples_repeat candidates",
    )
    parser.add_argument(
        "--learning-rates",
        type=lambda t: [float(p) for p in t.split(",")],
        default=[1e-4, 3e-4],
        help="learning-rate candidates",
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-train-samples", type=int, default=12_000)
    parser.add_argument("--seeds", type=int, default=2, help="final runs, seeds 0..N-1")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    options.command = command
    if options.max_train_samples > MNIST_VALIDATION.start:
        parser.error(
            f"--max-train-samples above {MNIST_VALIDATION.start} would train on the "
            "MNIST validation images"
        )
    report = run(options)
    run_out = out / f"feedback-{time.strftime('%Y%m%d-%H%M%S')}"
    run_out.mkdir(parents=True, exist_ok=True)
    (run_out / "feedback.json").write_text(json.dumps(report, indent=2))
    text = render_markdown(report)
    print(text)
    if options.write_results:
        replace_section(results_file, "feedback", text)
        print(f"\nwritten to {results_file}")
    return 0
