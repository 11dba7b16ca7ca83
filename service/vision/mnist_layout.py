"""MNIST's layout: a digit's ink, once separated from its paper, is given MNIST's stroke width
(when far from it), fitted into a 20x20 box keeping its aspect ratio, and placed in 28x28 with
its centre of mass where MNIST's digits have theirs (LeCun's description of the data set)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from service.vision.errors import NoDigitFound
from service.vision.ink import stroke_width
from training.signatures import IMAGE_SIZE

DIGIT_BOX = 20
CENTRE = 14.0
"""MNIST's mean centre of mass, measured on its training set: (14.0, 14.0) in pixel indices."""
TARGET_STROKE = 2.9
"""MNIST's median stroke width at the 20x20 scale (2 x ink area / boundary pixels)."""
MNIST_STROKES = (1.45, 4.65)
"""About the 1st and 97th percentiles of MNIST's stroke widths at the 20x20 scale: strokes
inside this range are left as drawn (the model has seen such widths), outside it they are
brought to TARGET_STROKE."""
STROKE_WORKING_SIZE = 3 * DIGIT_BOX
"""Stroke width is measured and corrected with the digit this many pixels high."""


def _normalise_stroke(crop: np.ndarray, scale: float) -> np.ndarray:
    """Dilates thin strokes (a fine pen on a large canvas) and erodes fat ones (a marker on a
    small digit) towards MNIST's width once scaled by `scale`."""
    width = stroke_width((crop > 0.5).astype(np.uint8))
    if width == 0.0:
        return crop
    target = TARGET_STROKE / scale
    thinnest, thickest = (limit / scale for limit in MNIST_STROKES)
    if width < thinnest:
        radius = round((target - width) / 2)
    elif width > thickest:
        radius = -round(min((width - target) / 2, width / 4))
    else:
        return crop
    if radius == 0:
        return crop
    kernel = np.ones((2 * abs(radius) + 1,) * 2, np.uint8)
    padded = np.pad(crop, abs(radius) + 1)
    morphed: np.ndarray = (cv2.dilate if radius > 0 else cv2.erode)(padded, kernel)
    return morphed


def fit_and_centre(crop: np.ndarray) -> np.ndarray:
    """The 28x28 MNIST layout of a digit's cropped ink (bright on black, 0..1): strokes far
    from MNIST's width re-drawn, scaled to fit 20x20 keeping the aspect ratio, placed with
    its centre of mass at MNIST's."""
    crop = _shrink(crop, STROKE_WORKING_SIZE, grow=True)
    crop = _normalise_stroke(crop, DIGIT_BOX / max(crop.shape))
    left, top, wide, high = cv2.boundingRect((crop > 0).view(np.uint8))
    crop = crop[top : top + high, left : left + wide]
    scaled = _shrink(crop, DIGIT_BOX, grow=True)
    return _place_by_centre_of_mass(scaled)


def _shrink(crop: np.ndarray, longest: int, *, grow: bool = False) -> np.ndarray:
    """Scales `crop` so its longer side is `longest` (only down unless `grow`), keeping the
    aspect ratio; area averaging keeps thin strokes as grey, then the peak is brought to 1.
    `crop` is never negative, and neither is what either interpolation makes of it."""
    height, width = crop.shape
    scale = longest / max(height, width)
    if scale < 1 or (grow and scale != 1):
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resample = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(crop, size, interpolation=resample)
    peak = float(crop.max())
    if peak <= 0:
        raise NoDigitFound("no digit found: the strokes vanish when scaled to 20x20 pixels")
    shrunk: np.ndarray = np.minimum(crop * np.float32(1.0 / peak), np.float32(1.0))
    return shrunk


def _place_by_centre_of_mass(patch: np.ndarray) -> np.ndarray:
    height, width = patch.shape
    mass = float(patch.sum(dtype=np.float64))
    centre_row = float(patch.sum(axis=1) @ np.arange(height)) / mass
    centre_col = float(patch.sum(axis=0) @ np.arange(width)) / mass
    top = _clamp(math.floor(CENTRE - centre_row + 0.5), 0, IMAGE_SIZE - height)
    left = _clamp(math.floor(CENTRE - centre_col + 0.5), 0, IMAGE_SIZE - width)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    canvas[top : top + height, left : left + width] = patch
    return canvas


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))
