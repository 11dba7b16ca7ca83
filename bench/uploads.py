"""`python -m bench uploads`: how well the service reads realistic uploads, per condition.

For every condition of `bench.uploads_corpus`, renders `--count` MNIST test digits, passes each
file through the service's own preprocessing (`decode_image` then `to_mnist_tensor`, as
`service.digits.preprocess` does) and the served digit model's serving signature, and reports
accuracy, how many were answered "no digit found" (counted as wrong) and the median decode plus
preprocess time. A last line passes all 10,000 MNIST test arrays through `to_mnist_tensor`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from collections.abc import Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MNIST_LINE = "mnist_test"
"""The row for MNIST's test arrays passed through the preprocessing."""
NOT_A_DIGIT = "not_a_digit"
"""The row for uploads holding no digit (`bench.not_digits`): none is ever correct."""
DIGIT_LIKE = "digit_like_letters"
"""The row for letters written the way a digit is (O, I, S, Z...)."""
NO_LABEL = -1
CONFIDENT = 0.9
"""An answer at or above this probability, unflagged, is a confident digit."""
BATCH = 256
SPAWN = multiprocessing.get_context("spawn")
"""Render workers are spawned, not forked: the parent has TensorFlow's threads running."""


@dataclass
class ConditionResult:
    condition: str
    images: int
    correct: int
    no_digit: int
    """Answered NoDigitFound (422), by the preprocessing or the model's reject option: counted
    as wrong."""
    unreadable: int
    """Refused for another reason (413/415): counted as wrong."""
    median_ms: float
    """Median decode + preprocess time per image."""
    render_ms: float
    """Median time to render one image (the generator, not the service)."""
    misread: list[tuple[int, int, int | None]] = field(default_factory=list)
    """(MNIST test index, label, prediction or None when refused) of every wrong answer."""
    flagged: int = 0
    """Answered with `uncertain: true` (right or wrong)."""
    confident: int = 0
    """Answered unflagged with a probability of at least CONFIDENT."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0

    def share(self, count: int) -> float:
        return count / self.images if self.images else 0.0

    @property
    def refused(self) -> int:
        return self.no_digit + self.unreadable

    @property
    def answered(self) -> int:
        """Answered with a digit and not flagged."""
        return self.images - self.refused - self.flagged


class DigitModel:
    """The served version of the digit model, called through its serving signature."""

    def __init__(self, models_dir: Path) -> None:
        import tensorflow as tf

        from service.app import configure_tensorflow
        from service.reject import RejectThresholds
        from service.settings import Settings
        from training import versions
        from training.signatures import SERVING_SIGNATURE_KEY

        configure_tensorflow(Settings())
        version = versions.served_version(models_dir, "digit")
        if version is None:
            raise SystemExit(f"no servable digit model under {models_dir / 'digit'}")
        self.version = version
        path = versions.version_dir(models_dir, "digit", version)
        self._serving = tf.saved_model.load(str(path)).signatures[SERVING_SIGNATURE_KEY]
        self.thresholds = RejectThresholds.from_metadata(versions.read_metadata(path))

    def probabilities(self, tensors: np.ndarray) -> np.ndarray:
        """The ten probabilities of each 28x28 tensor."""
        import tensorflow as tf

        chunks = [
            self._serving(image=tf.constant(tensors[i : i + BATCH]))["probabilities"].numpy()
            for i in range(0, len(tensors), BATCH)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)

    def predict(self, tensors: np.ndarray) -> np.ndarray:
        """The predicted digit of each 28x28 tensor."""
        return self.probabilities(tensors).argmax(axis=1)


def _preprocess(upload: bytes | np.ndarray, max_pixels: int) -> tuple[np.ndarray | None, str]:
    """The tensor the service would classify, or None and the kind of refusal."""
    from service.imaging import ImageError, NoDigitFound, decode_image, to_mnist_tensor

    try:
        picture = (
            decode_image(upload, max_pixels=max_pixels) if isinstance(upload, bytes) else upload
        )
        return to_mnist_tensor(picture), ""
    except NoDigitFound:
        return None, "no_digit"
    except ImageError:
        return None, "unreadable"


def evaluate(
    name: str,
    uploads: Iterable[tuple[bytes | np.ndarray, int, int]],
    model: DigitModel,
    *,
    max_pixels: int,
    save_dir: Path | None = None,
) -> ConditionResult:
    """Classifies (upload, label, test index) items as the service would and scores them."""
    from service.imaging import to_png

    tensors, labels, indices, refusals, times, render_times = [], [], [], [], [], []
    files: list[bytes | None] = []
    started = time.perf_counter()
    for upload, label, index in uploads:
        render_times.append(time.perf_counter() - started)
        begin = time.perf_counter()
        tensor, refusal = _preprocess(upload, max_pixels)
        times.append(time.perf_counter() - begin)
        tensors.append(tensor if tensor is not None else np.zeros((28, 28), np.float32))
        labels.append(label)
        indices.append(index)
        refusals.append(refusal)
        files.append(upload if isinstance(upload, bytes) and save_dir is not None else None)
        started = time.perf_counter()
    from service.image_errors import NoDigitFound
    from service.reject import judge

    probabilities = model.probabilities(np.stack(tensors)) if tensors else np.zeros((0, 10))
    predictions = probabilities.argmax(axis=1)
    flags = []
    for i, refusal in enumerate(refusals):
        flagged = False
        if not refusal:
            try:
                flagged = judge(probabilities[i], model.thresholds).uncertain
            except NoDigitFound:
                refusals[i] = "no_digit"
        flags.append(flagged)
    result = ConditionResult(
        condition=name,
        images=len(labels),
        correct=0,
        no_digit=refusals.count("no_digit"),
        unreadable=refusals.count("unreadable"),
        median_ms=1000 * statistics.median(times) if times else 0.0,
        render_ms=1000 * statistics.median(render_times) if render_times else 0.0,
        flagged=sum(flags),
        confident=sum(
            1
            for i, refusal in enumerate(refusals)
            if not refusal and not flags[i] and probabilities[i].max() >= CONFIDENT
        ),
    )
    for i, (label, index, refusal) in enumerate(zip(labels, indices, refusals, strict=True)):
        predicted = None if refusal else int(predictions[i])
        if predicted == label:
            result.correct += 1
        else:
            result.misread.append((index, label, predicted))
        if save_dir is not None and files[i] is not None:
            data = files[i]
            assert data is not None
            folder = save_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            answer = refusal if predicted is None else predicted
            stem = f"{i:04d}-test{index}-label{label}-pred{answer}"
            suffix = ".jpg" if data[:2] == b"\xff\xd8" else ".png"
            (folder / (stem + suffix)).write_bytes(data)
            if not refusal:
                (folder / (stem + "-seen.png")).write_bytes(to_png(tensors[i]))
    return result


def condition_uploads(
    condition: str,
    digits: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    *,
    pool: Executor | None = None,
) -> Iterable[tuple[bytes, int, int]]:
    from bench.uploads_corpus import corpus, sample

    indices = sample(condition, len(digits), count, seed)
    for index, (data, label) in zip(
        indices, corpus(condition, digits, labels, count, seed, pool=pool), strict=True
    ):
        yield data, label, int(index)


def not_digit_uploads(
    count: int, seed: int, *, digit_like: bool = False
) -> Iterable[tuple[bytes, int, int]]:
    """(upload, NO_LABEL, index) for `count` uploads of `bench.not_digits`."""
    from bench.not_digits import uploads

    for index, data in enumerate(uploads(count, seed, digit_like=digit_like)):
        yield data, NO_LABEL, index


def render_text(results: list[ConditionResult]) -> str:
    lines = [
        f"{'condition':<19}{'images':>7}{'accuracy':>10}{'no digit':>10}{'refused':>9}"
        f"{'flagged':>9}{'median ms':>11}{'render ms':>11}"
    ]
    for r in results:
        lines.append(
            f"{r.condition:<19}{r.images:>7}{r.accuracy:>10.2%}{r.no_digit:>10}{r.unreadable:>9}"
            f"{r.flagged:>9}{r.median_ms:>11.2f}{r.render_ms:>11.1f}"
        )
    return "\n".join(lines)


def render_reject_markdown(results: list[ConditionResult]) -> str:
    """Per set, the share of pictures refused (422), flagged (`uncertain`) and answered."""
    lines = [
        "| set | images | refused | flagged | answered, unflagged | of which p >= 0.9 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.condition} | {r.images} | {r.share(r.refused):.2%} | {r.share(r.flagged):.2%} "
            f"| {r.share(r.answered):.2%} | {r.share(r.confident):.2%} |"
        )
    return "\n".join(lines)


def render_markdown(results: list[ConditionResult], command: str, model_version: int) -> str:
    lines = [
        f"Realistic uploads (issue 11), digit model version {model_version}: `{command}`",
        "",
        "| condition | images | accuracy | no digit found | flagged "
        "| median decode+preprocess ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    digits = [r for r in results if r.condition not in (NOT_A_DIGIT, DIGIT_LIKE)]
    for r in digits:
        lines.append(
            f"| {r.condition} | {r.images} | {r.accuracy:.2%} | {r.no_digit} | {r.flagged} "
            f"| {r.median_ms:.2f} |"
        )
    lines += ["", "Refused, flagged and answered, per set:", "", render_reject_markdown(results)]
    return "\n".join(lines)


def to_json(results: list[ConditionResult], meta: dict[str, Any]) -> str:
    rows = [{**asdict(r), "accuracy": r.accuracy} for r in results]
    return json.dumps({"meta": meta, "conditions": rows}, indent=2)


def main(argv: list[str], *, results_file: Path, repo: Path) -> int:
    from bench.uploads_corpus import CONDITIONS, mnist_test_digits

    parser = argparse.ArgumentParser(
        prog="python -m bench uploads",
        description="Accuracy of the service's preprocessing and model on realistic uploads.",
    )
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
        "--not-digits",
        type=int,
        default=300,
        metavar="COUNT",
        help="also this many uploads holding no digit, and as many letters written like digits "
        "(default 300; 0 for none)",
    )
    parser.add_argument("--models-dir", type=Path, default=repo / "models", help="default: models/")
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
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    if options.count < 1:
        parser.error("--count must be at least 1")
    if options.jobs < 1:
        parser.error("--jobs must be at least 1")

    from service.settings import Settings

    max_pixels = Settings().max_image_pixels
    digits, labels = mnist_test_digits()
    model = DigitModel(options.models_dir)
    results: list[ConditionResult] = []
    print(render_text([]), flush=True)
    pool = ProcessPoolExecutor(options.jobs, mp_context=SPAWN) if options.jobs > 1 else None
    for condition in options.condition or list(CONDITIONS):
        uploads = condition_uploads(
            condition, digits, labels, options.count, options.seed, pool=pool
        )
        results.append(
            evaluate(condition, uploads, model, max_pixels=max_pixels, save_dir=options.save_dir)
        )
        print(render_text(results[-1:]).splitlines()[1], flush=True)
    if pool is not None:
        pool.shutdown()
    if options.mnist:
        arrays = (
            (digit.astype(np.float32), int(label), index)
            for index, (digit, label) in enumerate(zip(digits, labels, strict=True))
        )
        results.append(evaluate(MNIST_LINE, arrays, model, max_pixels=max_pixels))
    if options.not_digits:
        for name, digit_like in ((NOT_A_DIGIT, False), (DIGIT_LIKE, True)):
            uploads = not_digit_uploads(options.not_digits, options.seed, digit_like=digit_like)
            results.append(
                evaluate(name, uploads, model, max_pixels=max_pixels, save_dir=options.save_dir)
            )
    command = " ".join(["python -m bench uploads", *argv])
    print()
    print(render_text(results))
    print()
    print(render_reject_markdown(results))
    if options.json is not None:
        meta = {"command": command, "model_version": model.version, "seed": options.seed}
        options.json.write_text(to_json(results, meta))
    if options.write_results:
        from bench.report import replace_section

        replace_section(results_file, "uploads", render_markdown(results, command, model.version))
        print(f"\nwritten to {results_file}")
    return 0
