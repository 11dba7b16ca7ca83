"""Cutting a written number into digits (`service.vision.segmentation` through
`vision.preprocess_number`), and a single digit in several pieces staying one digit, on real
MNIST test digits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service import vision
from tests import drawings

pytestmark = pytest.mark.data

LIMITS = vision.ImageLimits()


def first_of(mnist, label: int, skip: int = 0) -> np.ndarray:
    """The (skip+1)-th MNIST test digit with `label`: picked by label, never by how it reads."""
    return mnist.x_test[np.flatnonzero(mnist.y_test == label)[skip]]


def by_shape(stretches: list[vision.NumberStretch]) -> list[vision.NumberDigit]:
    """The digits of the likeliest reading by shape alone (before the model judges)."""
    return [digit for stretch in stretches for digit in stretch.readings[0]]


def picks(mnist, count: int, seed: int) -> list[int]:
    return [int(i) for i in np.random.default_rng(seed).choice(len(mnist.x_test), count, False)]


@pytest.mark.parametrize("length", [2, 3, 4, 6])
def test_separated_digits_are_cut_apart_left_to_right(mnist, length: int) -> None:
    for seed in range(5):
        indices = picks(mnist, length, seed)
        row = drawings.row_of_digits([mnist.x_test[i] for i in indices])
        digits = by_shape(vision.preprocess_number(row, 12, LIMITS))
        assert len(digits) == length, f"test digits {indices}"
        lefts = [digit.box[0] for digit in digits]
        assert lefts == sorted(lefts)
        for digit in digits:
            assert digit.tensor.shape == (28, 28) and digit.tensor.max() == pytest.approx(1.0)


def test_boxes_are_in_the_pictures_pixels(mnist) -> None:
    """On a canvas ten times MNIST's size, each box lies on its own digit's ink."""
    scale, gap, margin = 10, 6, 4
    digits = [first_of(mnist, label) for label in (3, 6, 1)]
    canvas = drawings.number_canvas(digits, scale=scale, gap=gap)
    found = by_shape(vision.preprocess_number(canvas, 12, LIMITS))
    assert len(found) == 3
    left = margin
    for digit, reading in zip(digits, found, strict=True):
        cols = np.flatnonzero((digit > 64).any(axis=0))
        rows = np.flatnonzero((digit > 64).any(axis=1))
        width = cols[-1] - cols[0] + 1
        x, y, w, h = reading.box
        assert abs(x - left * scale) <= 2 * scale and abs(w - width * scale) <= 3 * scale
        assert abs(y - (margin + rows[0]) * scale) <= 2 * scale
        assert abs(h - (rows[-1] - rows[0] + 1) * scale) <= 3 * scale
        left += width + gap


def test_a_touching_pair_is_offered_cut_in_two(mnist) -> None:
    """Two digits whose strokes touch make one piece about two digits wide: one stretch, whose
    ways to read it include two digits for the model to choose (a pair of narrow digits, such
    as 11, can be narrower than a wide 0 and is not always offered)."""
    offered = 0
    for seed in range(10):
        indices = picks(mnist, 2, 100 + seed)
        row = drawings.row_of_digits([mnist.x_test[i] for i in indices], gap=-2)
        stretches = vision.preprocess_number(row, 12, LIMITS)
        offered += len(stretches) == 2 or any(len(r) == 2 for r in stretches[0].readings)
    assert offered >= 7


def test_a_number_of_one_digit_is_one_digit(mnist) -> None:
    (stretch,) = vision.preprocess_number(first_of(mnist, 7), 12, LIMITS)
    assert [len(reading) for reading in stretch.readings] == [1]


def _broken(digit: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    cut = digit.copy()
    cut[rows, cols] = 0
    return cut


def _single_digit_cases(mnist) -> dict[str, np.ndarray]:
    four, five, zero, one = (first_of(mnist, label) for label in (4, 5, 0, 1))
    five_rows = np.flatnonzero((five > 64).any(axis=1))
    zero_cols = np.flatnonzero((zero > 64).any(axis=0))
    middle = (zero_cols[0] + zero_cols[-1]) // 2
    four_rows = np.flatnonzero((four > 64).any(axis=1))
    dotted = np.pad(one, ((8, 0), (0, 0)))
    rows = np.flatnonzero((dotted > 64).any(axis=1))
    cols = np.flatnonzero((dotted > 64).any(axis=0))
    dotted[rows[0] - 5 : rows[0] - 3, cols[-1] - 2 : cols[-1]] = 255
    return {
        # A 4 in two strokes: its lower stem apart from the rest.
        "four in two strokes": _broken(four, rows=slice(four_rows[-1] - 7, four_rows[-1] - 5)),
        # A 5 whose top bar stands apart from its body.
        "five with a detached bar": _broken(five, rows=slice(five_rows[0] + 3, five_rows[0] + 5)),
        # A 0 broken top and bottom into two halves.
        "broken zero": _broken(zero, cols=slice(middle, middle + 1)),
        # A 1 with an i-dot-like speck above it.
        "one with a speck": dotted,
    }


@pytest.mark.parametrize(
    "case", ["four in two strokes", "five with a detached bar", "broken zero", "one with a speck"]
)
def test_a_digit_in_several_pieces_stays_one_digit(mnist, case: str) -> None:
    picture = _single_digit_cases(mnist)[case]
    (stretch,) = vision.preprocess_number(picture, 12, LIMITS)
    assert len(stretch.readings[0]) == 1  # by shape; the model's choice: test_number_api.py
    vision.preprocess(picture)  # /digit's reading: no SeveralDigits


def test_a_single_digit_reader_refuses_a_row(mnist) -> None:
    row = drawings.row_of_digits([first_of(mnist, 3), first_of(mnist, 6)])
    with pytest.raises(vision.SeveralDigits, match=r"2 digits.*/number"):
        vision.preprocess(row)
    canvas = drawings.number_canvas([first_of(mnist, label) for label in (3, 6, 1)])
    with pytest.raises(vision.SeveralDigits, match=r"3 digits"):
        vision.preprocess(canvas)


def test_two_narrow_digits_written_close_are_offered_apart(mnist) -> None:
    """Two 1s a few pixels apart can be as narrow as one digit, like the halves of a broken 0,
    and are then joined by shape: the reading of the two apart is offered as well."""
    ones = [first_of(mnist, 1, skip) for skip in range(8)]
    joined = 0
    for left, right in itertools.pairwise(ones):
        stretches = vision.preprocess_number(drawings.row_of_digits([left, right], 3), 12, LIMITS)
        if len(stretches) == 1:
            joined += 1
            assert [len(reading) for reading in stretches[0].readings] == [1, 2]
    assert joined >= 3


@pytest.mark.parametrize("share", [0.55, 0.7])
def test_a_smaller_digit_beside_a_digit_is_a_doubt_not_a_refusal(mnist, share: float) -> None:
    """A second digit under CLEARLY_DIGIT of the first's height may be a digit's stroke written
    apart: the single-digit reader answers, and says the picture may hold two digits."""
    row = drawings.row_of_digits([first_of(mnist, 3), drawings.smaller(first_of(mnist, 6), share)])
    assert vision.prepare_digit(row).possible_digits == 2


@pytest.mark.parametrize(
    "case", ["four in two strokes", "five with a detached bar", "broken zero", "one with a speck"]
)
def test_a_digit_in_pieces_is_one_possible_digit(mnist, case: str) -> None:
    assert vision.prepare_digit(_single_digit_cases(mnist)[case]).possible_digits == 1


def test_mnist_test_digits_stay_single(mnist) -> None:
    """A sample of MNIST's test set read one digit at a time: none is taken for a row.
    (The whole set: at most 3 of 10,000, measured; `python -m bench numbers` reports it, and how
    many are taken for maybe several.)"""
    refused, doubted = [], []
    for index in picks(mnist, 400, 7):
        try:
            prepared = vision.prepare_digit(mnist.x_test[index].astype(np.float32))
        except vision.SeveralDigits:
            refused.append(index)
        else:
            doubted += [index] if prepared.possible_digits > 1 else []
    assert refused == []
    assert doubted == []


def test_too_many_digits_are_refused_with_the_limit(mnist) -> None:
    row = drawings.row_of_digits([mnist.x_test[i] for i in picks(mnist, 5, 3)])
    with pytest.raises(vision.TooManyDigits, match=r"more than 4 digits.*4 digits per number"):
        vision.preprocess_number(row, 4, LIMITS)
    assert len(by_shape(vision.preprocess_number(row, 5, LIMITS))) == 5


def test_blank_picture_has_no_digit() -> None:
    with pytest.raises(vision.NoDigitFound):
        vision.preprocess_number(np.zeros((40, 120), dtype=np.uint8), 12, LIMITS)
