"""Pictures given as numbers (a JSON `pixels` array, an MNIST array): the one check that they
are a picture, and the one reading of their scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from service.vision.errors import InvalidPixels


def pixel_array(values: Any) -> np.ndarray:
    """`values` as a float32 2-D array; InvalidPixels unless they are a non-empty rectangle of
    finite numbers in 0..1 or 0..255 (either polarity)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        array = np.zeros(0)
    if array.ndim != 2 or array.size == 0:
        raise InvalidPixels("pixels must be a non-empty rectangle: rows of equal length")
    if not np.isfinite(array).all():
        raise InvalidPixels("pixel values must be finite numbers in 0..1 or 0..255")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 255:
        raise InvalidPixels(f"pixel values must lie in 0..1 or 0..255 (found {low:g}..{high:g})")
    return array.astype(np.float32)


def grey_levels(pixels: np.ndarray) -> np.ndarray:
    """Pixels as uint8 grey levels: values all within 0..1 are read as fractions of white,
    anything larger as 0..255."""
    array = np.asarray(pixels, dtype=np.float32)
    if array.size and float(array.max()) <= 1.0:
        array = array * 255.0
    levels: np.ndarray = np.rint(np.clip(array, 0.0, 255.0)).astype(np.uint8)
    return levels
