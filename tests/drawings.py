"""Turning MNIST digits into uploads people actually send: PNGs of canvases, scans, photos.

Each function takes a 28x28 uint8 MNIST digit (white ink on black) and returns encoded bytes.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def mnist_png(digit: np.ndarray) -> bytes:
    """The digit exactly as MNIST stores it."""
    return encode(Image.fromarray(digit, mode="L"))


def _ink(digit: np.ndarray, scale: int) -> np.ndarray:
    """The digit upscaled smoothly: 0..1 ink, as a person's stroke would look at that size."""
    big = Image.fromarray(digit, mode="L").resize(
        (28 * scale, 28 * scale), Image.Resampling.BICUBIC
    )
    return np.clip(np.asarray(big, dtype=np.float32) / 255.0, 0.0, 1.0)


def black_on_white(digit: np.ndarray, scale: int = 4) -> bytes:
    """Dark pen on white paper, a clean scan."""
    ink = _ink(digit, scale)
    return encode(Image.fromarray(np.uint8(255 - ink * 255), mode="L"))


def transparent_canvas(digit: np.ndarray, scale: int = 10, stroke: int = 0) -> bytes:
    """A web canvas: black strokes (optionally thickened by `stroke` pixels) on transparency."""
    ink = _ink(digit, scale)
    alpha = Image.fromarray(np.uint8(np.where(ink > 0.35, 255, 0)), mode="L")
    if stroke:
        alpha = alpha.filter(ImageFilter.MaxFilter(2 * stroke + 1))
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = np.asarray(alpha)
    return encode(Image.fromarray(rgba, mode="RGBA"))


def off_centre(digit: np.ndarray, scale: int = 6, size: tuple[int, int] = (400, 300)) -> bytes:
    """A larger digit, away from the centre of a wider white page."""
    ink = _ink(digit, scale)
    width, height = size
    page = np.ones((height, width), dtype=np.float32)
    top, left = 20, width - ink.shape[1] - 30
    page[top : top + ink.shape[0], left : left + ink.shape[1]] = 1.0 - ink
    return encode(Image.fromarray(np.uint8(page * 255), mode="L"))


def jpeg_photo(digit: np.ndarray, scale: int = 8, seed: int = 0) -> bytes:
    """Pen on grey-white paper under uneven light, with sensor noise, saved as JPEG."""
    rng = np.random.default_rng(seed)
    ink = _ink(digit, scale)
    height, width = ink.shape
    pad = 40
    paper = np.full((height + 2 * pad, width + 2 * pad), 0.85, dtype=np.float32)
    gradient = np.linspace(-0.12, 0.08, paper.shape[1], dtype=np.float32)[None, :]
    paper += gradient
    paper[pad : pad + height, pad : pad + width] -= 0.7 * ink
    paper += rng.normal(0, 0.02, paper.shape).astype(np.float32)
    rgb = np.repeat(np.clip(paper, 0, 1)[..., None] * 255, 3, axis=2).astype(np.uint8)
    return encode(Image.fromarray(rgb, mode="RGB"), "JPEG", quality=80)


def row_of_digits(digits: list[np.ndarray], gap: int = 6, margin: int = 4) -> np.ndarray:
    """MNIST digits side by side as one MNIST-style array (white on black, 28 pixels high):
    each digit's columns of ink, `gap` pixels apart (a negative gap overlaps them), with
    `margin` pixels all round."""
    crops = []
    for digit in digits:
        cols = np.flatnonzero((digit > 64).any(axis=0))
        crops.append(digit[:, cols[0] : cols[-1] + 1])
    width = sum(crop.shape[1] for crop in crops) + max(gap, 0) * (len(crops) - 1)
    row = np.zeros((28, width), dtype=np.uint8)
    left = 0
    for crop in crops:
        region = row[:, left : left + crop.shape[1]]
        np.maximum(region, crop, out=region)
        left += crop.shape[1] + gap
    cols = np.flatnonzero(row.any(axis=0))
    return np.pad(row[:, : cols[-1] + 1], margin)


def smaller(digit: np.ndarray, share: float) -> np.ndarray:
    """An MNIST digit written at `share` of its height, standing on the same line (bottom-left
    aligned in 28x28)."""
    size = max(1, round(28 * share))
    small = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BOX))
    return np.pad(small, ((28 - size, 0), (0, 28 - size)))


def number_canvas(digits: list[np.ndarray], scale: int = 10, gap: int = 6) -> bytes:
    """A web canvas of a written number: `row_of_digits` drawn as `transparent_canvas` draws
    one digit (black strokes on transparency, 28 x `scale` pixels high, plus the margin)."""
    row = row_of_digits(digits, gap)
    height, width = row.shape
    big = Image.fromarray(row, mode="L").resize(
        (width * scale, height * scale), Image.Resampling.BICUBIC
    )
    ink = np.asarray(big, dtype=np.float32) / 255.0
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(ink > 0.35, 255, 0)
    return encode(Image.fromarray(rgba, mode="RGBA"))
