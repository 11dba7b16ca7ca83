"""Scoring uploads as the service reads them: the served digit model, the service's own
preprocessing, and per-condition results (what `python -m bench uploads` and the test suite's
bar on realistic uploads both use)."""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from service.vision import PreparedDigit

MNIST_LINE = "mnist_test"
"""The row for MNIST's test arrays passed through the preprocessing."""
MNIST_VALIDATION_LINE = "mnist_validation"
"""The row for the digit recipe's validation arrays passed through the preprocessing."""
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
        from service.settings import Settings
        from service.usecases.reject import RejectThresholds
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

    def doubts(
        self, tensors: np.ndarray, probabilities: np.ndarray, possible_digits: Sequence[int]
    ) -> list[str]:
        """What the service's reject option makes of each answer (its tensor, probabilities,
        and how many digits its picture may hold): "refused" (422 no_digit_found or
        several_digits), "flagged" (`uncertain`) or "" (answered)."""
        from service.usecases.reject import judge
        from service.vision import ImageError

        outcomes = []
        for row, possible in zip(probabilities, possible_digits, strict=True):
            try:
                judgement = judge(row, self.thresholds, possible_digits=possible)
                outcomes.append("flagged" if judgement.uncertain else "")
            except ImageError:  # no digit, or no one digit of several
                outcomes.append("refused")
        return outcomes


def prepare_upload(upload: bytes | np.ndarray, max_pixels: int) -> tuple[PreparedDigit | None, str]:
    """What the service would classify, or None and the kind of refusal."""
    from service import vision

    try:
        return vision.prepare_digit(upload, vision.ImageLimits(max_pixels)), ""
    except vision.NoDigitFound:
        return None, "no_digit"
    except vision.ImageError:
        return None, "unreadable"


def preprocess_upload(upload: bytes | np.ndarray, max_pixels: int) -> tuple[np.ndarray | None, str]:
    """The tensor the service would classify, or None and the kind of refusal."""
    prepared, refusal = prepare_upload(upload, max_pixels)
    return (None if prepared is None else prepared.tensor), refusal


def evaluate(
    name: str,
    uploads: Iterable[tuple[bytes | np.ndarray, int, int]],
    model: DigitModel,
    *,
    max_pixels: int,
    save_dir: Path | None = None,
) -> ConditionResult:
    """Classifies (upload, label, test index) items as the service would and scores them."""
    from service.vision import to_png

    tensors, labels, indices, refusals, times, render_times = [], [], [], [], [], []
    possible = []
    blank = np.zeros((28, 28), np.float32)
    files: list[bytes | None] = []
    started = time.perf_counter()
    for upload, label, index in uploads:
        render_times.append(time.perf_counter() - started)
        begin = time.perf_counter()
        prepared, refusal = prepare_upload(upload, max_pixels)
        times.append(time.perf_counter() - begin)
        tensors.append(blank if prepared is None else prepared.tensor)
        possible.append(1 if prepared is None else prepared.possible_digits)
        labels.append(label)
        indices.append(index)
        refusals.append(refusal)
        files.append(upload if isinstance(upload, bytes) and save_dir is not None else None)
        started = time.perf_counter()
    stacked = np.stack(tensors) if tensors else np.zeros((0, 28, 28), np.float32)
    probabilities = model.probabilities(stacked) if tensors else np.zeros((0, 10))
    predictions = probabilities.argmax(axis=1)
    flags = []
    for i, doubt in enumerate(model.doubts(stacked, probabilities, possible)):
        if not refusals[i] and doubt == "refused":
            refusals[i] = "no_digit"
        flags.append(not refusals[i] and doubt == "flagged")
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
