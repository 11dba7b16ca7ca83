"""Scoring written numbers as the service reads them: `/number`'s reading (the service's own
cutting into digits and its choice among the ways to cut touching digits) and `/digit`'s answer
to the same picture, with the served digit model called in process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from bench.numbers_corpus import WrittenNumber
from bench.upload_scoring import DigitModel

CONFIDENT = 0.9
"""An unflagged /digit answer at least this probable is a confident answer."""


@dataclass
class NumberScore:
    numbers: int = 0
    right: int = 0
    """Whole numbers read exactly."""
    digits: int = 0
    digit_errors: int = 0
    """Edits (a digit wrong, missing or extra) between the readings and the truth."""
    digit_answers: int = 0
    """/digit answered the picture with one digit (200) rather than refusing it."""
    digit_flagged: int = 0
    """...flagged `uncertain` (by the model's doubt, or as a picture that may hold several
    digits)."""
    digit_confident: int = 0
    """...unflagged, with probability at least CONFIDENT."""
    refusals: Counter[str] = field(default_factory=Counter)
    """/number's refusals by error code."""

    @property
    def accuracy(self) -> float:
        return self.right / self.numbers if self.numbers else 0.0

    @property
    def digit_accuracy(self) -> float:
        return 1.0 - self.digit_errors / self.digits if self.digits else 0.0

    def add(self, other: NumberScore) -> None:
        self.numbers += other.numbers
        self.right += other.right
        self.digits += other.digits
        self.digit_errors += other.digit_errors
        self.digit_answers += other.digit_answers
        self.digit_flagged += other.digit_flagged
        self.digit_confident += other.digit_confident
        self.refusals.update(other.refusals)


def edit_distance(read: str, truth: str) -> int:
    """Digits to change, insert or delete to turn `read` into `truth` (Levenshtein)."""
    previous = list(range(len(truth) + 1))
    for i, got in enumerate(read, 1):
        current = [i]
        for j, want in enumerate(truth, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (got != want))
            )
        previous = current
    return previous[-1]


def read_number(upload: bytes, model: DigitModel, max_digits: int) -> str | None:
    """The number `/number` reads in `upload`, or None when it refuses it."""
    from service import vision
    from service.usecases.number import likeliest

    stretches = vision.preprocess_number(upload, max_digits, vision.ImageLimits())
    tensors = [digit.tensor for s in stretches for reading in s.readings for digit in reading]
    rows = iter(model.probabilities(np.stack(tensors)))
    digits = []
    for stretch in stretches:
        ways = [[next(rows) for _ in reading] for reading in stretch.readings]
        digits += likeliest(stretch, ways)
    return "".join(str(digit.digit) for digit in digits)


def score(numbers: Iterable[WrittenNumber], model: DigitModel, max_digits: int) -> NumberScore:
    """/number's and /digit's answers to each number, against the digits written."""
    from service import vision

    result = NumberScore()
    for number in numbers:
        result.numbers += 1
        result.digits += len(number.text)
        try:
            read = read_number(number.upload, model, max_digits)
        except vision.ImageError as exc:
            result.refusals[exc.code] += 1
            read = ""
        result.right += read == number.text
        result.digit_errors += min(len(number.text), edit_distance(read or "", number.text))
        try:
            prepared = vision.prepare_digit(number.upload)
        except vision.ImageError:
            continue
        probabilities = model.probabilities(prepared.tensor[None])
        doubt = model.doubts(prepared.tensor[None], probabilities, [prepared.possible_digits])[0]
        if doubt == "refused":
            continue
        result.digit_answers += 1
        result.digit_flagged += doubt == "flagged"
        result.digit_confident += not doubt and float(probabilities.max()) >= CONFIDENT
    return result
