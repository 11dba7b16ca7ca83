"""How well the service reads realistic uploads (photos, scans, canvases), per condition.

For every condition of `bench.uploads_corpus`, renders `--count` MNIST test digits, passes each
file through the service's own preprocessing (`service.vision.preprocess`, as `/digit` does)
and the served digit model's serving signature, and reports accuracy, how many were answered
"no digit found" (counted as wrong), how many were flagged uncertain, and the median decode
plus preprocess time. A further line passes all 10,000 MNIST test arrays through the same
preprocessing. Then pictures holding no digit (`bench.not_digits`: letters, symbols, shapes,
scribbles, textures) and letters written the way digits are: for every set, the share refused
(422), flagged (`uncertain`) and answered unflagged, and of those how many at probability 0.9 or
more (a confident digit where there is none).
Writes the `uploads` section, and uploads.json to the run's folder.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bench import options
from bench.results import Section, table
from bench.upload_scoring import (
    DIGIT_LIKE,
    MNIST_LINE,
    MNIST_VALIDATION_LINE,
    NOT_A_DIGIT,
    SPAWN,
    ConditionResult,
    DigitModel,
    condition_uploads,
    evaluate,
    not_digit_uploads,
)


def render(results: list[ConditionResult], model_version: int) -> str:
    digits = [r for r in results if r.condition not in (NOT_A_DIGIT, DIGIT_LIKE)]
    rows = [
        [r.condition, str(r.images), f"{r.accuracy:.2%}", str(r.no_digit), str(r.unreadable),
         str(r.flagged), f"{r.median_ms:.2f}"]
        for r in digits
    ]  # fmt: skip
    columns = (
        "condition", "images", "accuracy", "no digit found", "refused", "flagged", "median ms"
    )  # fmt: skip
    return (
        f"Digit model version {model_version}; median ms: decode and preprocess of one upload."
        + "\n\n"
        + table(columns, rows, labels=1)
        + "\n\nRefused (422), flagged (`uncertain`) and answered unflagged, per set:\n\n"
        + render_reject(results)
    )


def render_reject(results: list[ConditionResult]) -> str:
    """Per set, the share of pictures refused, flagged and answered."""
    rows = [
        [r.condition, str(r.images), f"{r.share(r.refused):.2%}", f"{r.share(r.flagged):.2%}",
         f"{r.share(r.answered):.2%}", f"{r.share(r.confident):.2%}"]
        for r in results
    ]  # fmt: skip
    columns = ("set", "images", "refused", "flagged", "answered, unflagged", "of which p >= 0.9")
    return table(columns, rows, labels=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.uploads_corpus import CONDITIONS

    options.models_dir(parser)
    parser.add_argument("--count", type=int, default=300, help="images per condition (300)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument(
        "--condition",
        action="append",
        choices=list(CONDITIONS),
        default=None,
        metavar="NAME",
        help="a condition to run (repeatable; default all): " + ", ".join(CONDITIONS),
    )
    parser.add_argument(
        "--mnist",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also pass the 10,000 MNIST test arrays through the preprocessing (default on)",
    )
    parser.add_argument(
        "--mnist-split",
        choices=("test", "validation"),
        default="test",
        help="which MNIST arrays --mnist passes: the test set (final figures) or the recipe's "
        "validation split, the last 6,000 training images (for choosing a recipe or threshold)",
    )
    parser.add_argument(
        "--not-digits",
        type=int,
        default=300,
        metavar="COUNT",
        help="also this many uploads holding no digit, and as many letters written like digits "
        "(default 300; 0 for none)",
    )
    parser.add_argument(
        "--save-dir",
        type=Path,
        default=None,
        help="write each rendered file and the 28x28 the model saw, named by label and prediction",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes rendering the corpus (default 1); the figures are the same, only the "
        "render times change",
    )


def run(args: argparse.Namespace) -> list[Section]:
    from bench.uploads_corpus import CONDITIONS, mnist_test_digits, mnist_validation_digits
    from service.settings import Settings

    if args.count < 1 or args.jobs < 1 or args.not_digits < 0:
        raise SystemExit("--count and --jobs must be at least 1, --not-digits at least 0")
    max_pixels = Settings().max_image_pixels
    digits, labels = mnist_test_digits()
    model = DigitModel(args.models_dir)
    results: list[ConditionResult] = []
    pool = ProcessPoolExecutor(args.jobs, mp_context=SPAWN) if args.jobs > 1 else None
    for condition in args.condition or list(CONDITIONS):
        uploads = condition_uploads(condition, digits, labels, args.count, args.seed, pool=pool)
        results.append(
            evaluate(condition, uploads, model, max_pixels=max_pixels, save_dir=args.save_dir)
        )
        r = results[-1]
        print(f"{condition}: {r.accuracy:.2%} of {r.images}, {r.median_ms:.2f} ms", flush=True)
    if pool is not None:
        pool.shutdown()
    if args.mnist:
        mnist, mnist_labels, line = (digits, labels, MNIST_LINE)
        if args.mnist_split == "validation":
            mnist, mnist_labels = mnist_validation_digits()
            line = MNIST_VALIDATION_LINE
        arrays = (
            (digit.astype(np.float32), int(label), index)
            for index, (digit, label) in enumerate(zip(mnist, mnist_labels, strict=True))
        )
        results.append(evaluate(line, arrays, model, max_pixels=max_pixels))
    for name, digit_like in ((NOT_A_DIGIT, False), (DIGIT_LIKE, True)):
        if args.not_digits:
            sets = not_digit_uploads(args.not_digits, args.seed, digit_like=digit_like)
            results.append(
                evaluate(name, sets, model, max_pixels=max_pixels, save_dir=args.save_dir)
            )
    rows = [{**asdict(r), "accuracy": r.accuracy} for r in results]
    meta = {"model_version": model.version, "seed": args.seed}
    (args.run_dir / "uploads.json").write_text(json.dumps({"meta": meta, "conditions": rows}))
    return [Section("uploads", render(results, model.version))]
