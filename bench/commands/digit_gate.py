"""A separate digit/not-digit gate for the reject option: trained, thresholded, measured.

Trains `bench.digit_gate`'s small network (MNIST's training digits against `training.negatives`'
pictures) once per `--train-seed`, chooses its two thresholds on the gate's scores of MNIST's
validation digits passed through the service's preprocessing (the shares `training.reject`
uses), then scores with the served classifier and the gate deciding refusals and flags: every
corpus condition at `--seed` (`--count` images each), MNIST's test set through the
preprocessing, and the not-a-digit set and the digit-like letters at `--seed`. Reports, per
training seed, what `python -m bench uploads` reports, and the mean over seeds.
Writes the `digit_gate` section, and digit_gate.json to the run's folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bench import options
from bench.results import Section, table

VALIDATION = 6000
"""MNIST's last training rows, held out of the gate's training: the classifier's validation
split too."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    parser.add_argument(
        "--train-seed", type=int, action="append", default=None, help="gate seed (repeatable; 0)"
    )
    parser.add_argument("--epochs", type=int, default=4, help="gate epochs (default 4)")
    parser.add_argument(
        "--train-digits",
        type=int,
        default=None,
        metavar="COUNT",
        help="train on the first COUNT training digits and as many negatives (default all)",
    )
    parser.add_argument(
        "--condition",
        action="append",
        default=None,
        metavar="NAME",
        help="a corpus condition to score (repeatable; default all)",
    )
    parser.add_argument(
        "--mnist",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the 10,000 MNIST test arrays through the preprocessing (default on)",
    )
    parser.add_argument("--count", type=int, default=40, help="images per condition (40)")
    parser.add_argument("--seed", type=int, default=99, help="corpus seed (default 99)")
    parser.add_argument(
        "--not-digits", type=int, default=300, metavar="COUNT", help="not-a-digit uploads (300)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes rendering the corpus")
    parser.add_argument(
        "--gate",
        type=Path,
        action="append",
        default=None,
        help="score this saved gate (.keras, repeatable) instead of training one per seed",
    )


def run(args: argparse.Namespace) -> list[Section]:
    from bench.digit_gate import (
        GatedDigitModel,
        gate_scores,
        gate_thresholds,
        load_gate,
        train_gate,
    )
    from bench.upload_scoring import (
        DIGIT_LIKE,
        MNIST_LINE,
        NOT_A_DIGIT,
        SPAWN,
        condition_uploads,
        evaluate,
        not_digit_uploads,
        preprocess_upload,
    )
    from bench.uploads_corpus import CONDITIONS
    from service.settings import Settings
    from training import data, negatives
    from training.settings import TrainingSettings
    from training.train import VALIDATION_NEGATIVES, VALIDATION_NEGATIVES_COUNT

    if args.count < 1 or args.jobs < 1 or args.not_digits < 0 or args.epochs < 1:
        raise SystemExit("--count, --jobs and --epochs must be at least 1, --not-digits at least 0")
    unknown = set(args.condition or []) - set(CONDITIONS)
    if unknown:
        raise SystemExit(f"unknown condition {sorted(unknown)}; known: {', '.join(CONDITIONS)}")
    settings = TrainingSettings()
    mnist = data.load_mnist(
        data.locate(data.MNIST_FILE, settings.data_dir, settings.cache_dir, download=False)
    )
    max_pixels = Settings().max_image_pixels
    rows = mnist.x_train.astype(np.float32) / 255.0
    train, validation = rows[:-VALIDATION][: args.train_digits], rows[-VALIDATION:]
    served = [preprocess_upload(digit, max_pixels)[0] for digit in mnist.x_train[-VALIDATION:]]
    served_validation = np.stack([t for t in served if t is not None])
    validation_negatives = (
        np.zeros((0, 28, 28), np.float32)
        if args.gate
        else negatives.negatives(VALIDATION_NEGATIVES_COUNT, VALIDATION_NEGATIVES)
    )
    pool = ProcessPoolExecutor(args.jobs, mp_context=SPAWN) if args.jobs > 1 else None
    runs = []
    gates = [(str(path), load_gate(path)) for path in args.gate or []]
    for seed in [] if gates else args.train_seed or [0]:
        gate = train_gate(train, validation, validation_negatives, seed=seed, epochs=args.epochs)
        gate.model.save(args.run_dir / f"gate-{seed}.keras")
        gates.append((f"seed {seed}", gate))
    for name, gate in gates:
        refuse, flag = gate_thresholds(gate_scores(gate.model, served_validation))
        model = GatedDigitModel(args.models_dir, gate.model, refuse, flag)
        results = []
        for condition in args.condition or list(CONDITIONS):
            uploads = condition_uploads(
                condition, mnist.x_test, mnist.y_test, args.count, args.seed, pool=pool
            )
            results.append(evaluate(condition, uploads, model, max_pixels=max_pixels))
        if args.mnist:
            arrays = (
                (digit.astype(np.float32), int(label), index)
                for index, (digit, label) in enumerate(zip(mnist.x_test, mnist.y_test, strict=True))
            )
            results.append(evaluate(MNIST_LINE, arrays, model, max_pixels=max_pixels))
        for set_name, digit_like in ((NOT_A_DIGIT, False), (DIGIT_LIKE, True)):
            if args.not_digits:
                sets = not_digit_uploads(args.not_digits, args.seed, digit_like=digit_like)
                results.append(evaluate(set_name, sets, model, max_pixels=max_pixels))
        for r in results:
            print(
                f"gate {name}, {r.condition}: {r.accuracy:.2%} right, "
                f"{r.share(r.refused):.2%} refused, {r.share(r.flagged):.2%} flagged",
                flush=True,
            )
        runs.append(
            {
                "gate": name,
                "no_digit_below": refuse,
                "uncertain_below": flag,
                "training_seconds": gate.seconds,
                "history": gate.history,
                "results": [{**asdict(r), "accuracy": r.accuracy} for r in results],
            }
        )
    if pool is not None:
        pool.shutdown()
    meta = {
        "seed": args.seed,
        "count": args.count,
        "epochs": args.epochs,
        "train_digits": len(train),
    }
    (args.run_dir / "digit_gate.json").write_text(json.dumps({"meta": meta, "runs": runs}))
    return [Section("digit_gate", render(runs, args.seed))]


def render(runs: list[dict], seed: int) -> str:  # type: ignore[type-arg]
    """Per set, the mean over gate seeds of accuracy, refused, flagged and confident answers."""
    names = [r["condition"] for r in runs[0]["results"]]

    def mean(name: str, value: str) -> float:
        picked = []
        for run in runs:
            (row,) = (r for r in run["results"] if r["condition"] == name)
            picked.append(row[value] / row["images"] if value != "accuracy" else row[value])
        return statistics.fmean(picked)

    def refused(name: str) -> float:
        return mean(name, "no_digit") + mean(name, "unreadable")

    rows = [
        [name, f"{mean(name, 'accuracy'):.2%}", f"{refused(name):.2%}",
         f"{mean(name, 'flagged'):.2%}", f"{mean(name, 'confident'):.2%}"]
        for name in names
    ]  # fmt: skip
    thresholds = ", ".join(
        f"{r['gate']}: {r['no_digit_below']:.4f} / {r['uncertain_below']:.4f} "
        f"({r['training_seconds']:.0f} s)"
        for r in runs
    )
    columns = ("set", "accuracy", "refused", "flagged", "answered unflagged at p >= 0.9")
    return (
        f"Corpus seed {seed}; means over {len(runs)} gate(s). Gate thresholds "
        f"(no_digit_below / uncertain_below) and training time: {thresholds}.\n\n"
        + table(columns, rows, labels=1)
    )
