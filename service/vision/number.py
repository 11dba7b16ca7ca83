"""From a picture of a written number to MNIST tensors for its digits, left to right, each
with its box in the picture.

The picture is decoded and separated from its paper as a single digit's is
(`service.vision.pipeline`, `service.vision.ink`), at a larger working size: a number's digits
each take a fraction of its width. The ink's mask is cut into stretches of the row
(`service.vision.segmentation`), and each digit's ink goes through the same crop and MNIST
layout as a picture of one digit, so a digit reads the same alone or in a number. A stretch of
touching digits comes with the several ways to cut it, for the digit model to choose from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.vision.errors import NoDigitFound, TooManyDigits
from service.vision.ink import Ink, crop_ink
from service.vision.mnist_layout import fit_and_centre
from service.vision.pipeline import (
    ROW_SIZE,
    ImageLimits,
    Placement,
    decode_scaled,
    separate,
    working_picture,
)
from service.vision.segmentation import DigitPiece, split_digits


@dataclass(frozen=True)
class NumberDigit:
    """One digit of a number: what the model reads, and where the digit is."""

    tensor: np.ndarray
    """28x28 float32, MNIST's layout (white ink on black, 0..1)."""
    box: tuple[int, int, int, int]
    """x, y, width, height in the uploaded picture's pixels (after its EXIF rotation)."""


@dataclass(frozen=True)
class NumberStretch:
    """A stretch of the number: one digit, or touching digits with the ways to cut them (each
    a tuple of digits left to right, the likeliest by shape first)."""

    readings: tuple[tuple[NumberDigit, ...], ...]


def preprocess_number(
    data: bytes | np.ndarray, max_digits: int, limits: ImageLimits
) -> list[NumberStretch]:
    """The stretches of the number in an encoded image (`bytes`) or a pixel array, left to
    right. Raises the `ImageError`s `preprocess` does (NoDigitFound when nothing stands out),
    and TooManyDigits when the likeliest readings hold more than `max_digits` digits."""
    if isinstance(data, bytes):
        image, scale = decode_scaled(data, max_pixels=limits.max_pixels, longest=ROW_SIZE.longest)
        working = working_picture(image, size=ROW_SIZE)
        placement = Placement(scale=scale).then(working.placement)
    else:
        working = working_picture(data, size=ROW_SIZE)
        placement = working.placement
    ink = separate(working)
    stretches = split_digits(ink.mask, max_digits)
    if sum(len(stretch.readings[0]) for stretch in stretches) > max_digits:
        raise TooManyDigits(
            f"the picture holds more than {max_digits} digits; the limit is {max_digits} digits "
            "per number (PERCEPTRON_MAX_NUMBER_DIGITS): crop it to the number, or send its "
            "parts one by one"
        )
    number = []
    for stretch in stretches:
        readings = [_read(ink, placement, pieces) for pieces in stretch.readings]
        kept = tuple(reading for reading in readings if reading is not None)
        if kept:
            number.append(NumberStretch(kept))
    if not number:
        raise NoDigitFound(
            "no digit found: nothing stands out from the paper more than its own texture does"
        )
    return number


def _read(
    ink: Ink, placement: Placement, pieces: tuple[DigitPiece, ...]
) -> tuple[NumberDigit, ...] | None:
    """The digits of one way to read a stretch; None when one of them is fainter than the
    paper's texture (a smudge, not a digit)."""
    try:
        return tuple(
            NumberDigit(fit_and_centre(crop_ink(ink, piece.keep)), placement.box(piece.box))
            for piece in pieces
        )
    except NoDigitFound:
        return None
