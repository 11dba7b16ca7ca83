"""The materials of a realistic upload: a handwritten stroke made from an MNIST digit, paper,
light, rulings, and the camera's noise and file format (numpy and Pillow only).

Pages are float32 RGB arrays (H, W, 3) in 0..255. Ink, rulings and shadows act
multiplicatively, as light reflected off paper does: ink of colour C on paper P shows
P * C / 255, so dark ink under a shadow is darker still and coloured ink stays coloured.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

Page = np.ndarray
"""float32 (H, W, 3), 0..255."""

MNIST_BOX = 20
"""MNIST digits are size-normalised to 20x20 within their 28x28 frame."""


def steep(values: np.ndarray, threshold: float, width: float) -> np.ndarray:
    """A sigmoid step at `threshold`, `width` wide, rescaled so that 0 stays 0 and 1 stays 1
    (else the whole box around a stroke would carry a faint tint of ink)."""

    def sigmoid(x: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float32)))

    low, high = sigmoid((0.0 - threshold) / width), sigmoid((1.0 - threshold) / width)
    result: np.ndarray = np.clip((sigmoid((values - threshold) / width) - low) / (high - low), 0, 1)
    return result


def smooth_field(height: int, width: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise, about -1..1, varying over roughly `cells` blobs across the page."""
    rows = max(2, round(cells * height / max(height, width)))
    cols = max(2, round(cells * width / max(height, width)))
    small = rng.standard_normal((rows, cols)).astype(np.float32)
    field = Image.fromarray(small, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    result: np.ndarray = np.clip(np.asarray(field, dtype=np.float32) / 1.5, -1.0, 1.0)
    return result


def _grow(coverage: np.ndarray, radius: int) -> np.ndarray:
    """Dilates (radius > 0) or erodes (radius < 0) the stroke by a square of `radius` pixels."""
    if radius == 0:
        return coverage
    pick = np.maximum if radius > 0 else np.minimum
    r = abs(radius)
    padded = np.pad(coverage, r, mode="constant")
    out = coverage.copy()
    height, width = coverage.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out = pick(out, padded[r + dy : r + dy + height, r + dx : r + dx + width])
    return out


def ink_stroke(
    digit: np.ndarray,
    longest: float,
    rng: np.random.Generator,
    *,
    weight: tuple[float, float] = (0.3, 0.7),
    crispness: float = 0.06,
) -> np.ndarray:
    """The digit as a pen stroke: coverage 0..1 whose ink box has `longest` pixels on its longer
    side, with a small random rotation, slant of the aspect ratio and stroke width.

    MNIST's soft anti-aliased digit is upscaled smoothly and put through a steep sigmoid (a pen is
    crisper than MNIST); `weight` is the range of the threshold, low for a broad pen and high for
    a fine one. The stroke is shaped at a working size of at most 280 pixels, then scaled."""
    angle = rng.uniform(-10.0, 10.0)
    stretch = rng.uniform(0.94, 1.06)  # MNIST already varies in aspect; more costs readability
    threshold = rng.uniform(*weight)
    grow = int(rng.choice([-1, 0, 0, 0, 1]))
    work = int(np.clip(longest * 28 / MNIST_BOX, 84, 280))
    source = Image.fromarray(digit.astype(np.float32) / 255.0, mode="F")
    big = source.resize((max(8, round(work * stretch)), work), Image.Resampling.BICUBIC)
    coverage = steep(np.asarray(big, dtype=np.float32), threshold, crispness)
    coverage = _grow(coverage, grow * max(1, work // 140))
    turned = Image.fromarray(coverage.astype(np.float32), mode="F").rotate(
        angle, Image.Resampling.BICUBIC, expand=True
    )
    coverage = np.clip(np.asarray(turned, dtype=np.float32), 0.0, 1.0)
    rows = np.flatnonzero(coverage.max(axis=1) > 0.5)
    cols = np.flatnonzero(coverage.max(axis=0) > 0.5)
    if rows.size == 0:
        raise ValueError("the digit has no ink above the stroke threshold")
    pad = max(4, work // 14)  # room for the soft edge: the box must not clip it
    top, left = max(0, rows[0] - pad), max(0, cols[0] - pad)
    coverage = coverage[top : rows[-1] + pad + 1, left : cols[-1] + pad + 1]
    factor = longest / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    size = (max(1, round(coverage.shape[1] * factor)), max(1, round(coverage.shape[0] * factor)))
    scaled = Image.fromarray(coverage, mode="F").resize(size, Image.Resampling.BICUBIC)
    coverage = np.asarray(scaled, dtype=np.float32)
    if factor > 1.5:
        # Upscaling blurs the edge over `factor` pixels; a pen's edge stays about a pixel wide.
        coverage = steep(coverage, 0.5, 0.12)
    result: np.ndarray = np.clip(coverage, 0.0, 1.0).astype(np.float32)
    return result


def trim(coverage: np.ndarray, level: float = 0.005) -> np.ndarray:
    """The stroke without the empty margin around its ink."""
    rows = np.flatnonzero(coverage.max(axis=1) > level)
    cols = np.flatnonzero(coverage.max(axis=0) > level)
    return coverage[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def blank_page(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    level: float,
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
    texture: float = 0.015,
) -> Page:
    """Paper of brightness `level` with a colour tint and a faint blotchy texture."""
    field = 1.0 + texture * smooth_field(height, width, int(rng.integers(4, 12)), rng)
    colour = np.asarray(tint, dtype=np.float32) * level
    return (field[..., None] * colour[None, None, :]).astype(np.float32)


def paper_tint(rng: np.random.Generator) -> tuple[float, float, float]:
    """White, cream or a cool white balance."""
    kind = rng.integers(3)
    if kind == 0:
        return (1.0, 1.0, 1.0)
    if kind == 1:
        return (1.0, float(rng.uniform(0.96, 0.99)), float(rng.uniform(0.86, 0.95)))
    return (float(rng.uniform(0.93, 0.98)), float(rng.uniform(0.97, 1.0)), 1.0)


def place(
    page_shape: tuple[int, ...], stroke_shape: tuple[int, ...], rng: np.random.Generator
) -> tuple[int, int]:
    """A random top-left for the stroke, inside the page."""
    top = int(rng.integers(0, max(1, page_shape[0] - stroke_shape[0] + 1)))
    left = int(rng.integers(0, max(1, page_shape[1] - stroke_shape[1] + 1)))
    return top, left


def apply_ink(
    page: Page,
    coverage: np.ndarray,
    top: int,
    left: int,
    colour: tuple[float, float, float] | np.ndarray,
) -> None:
    """Darkens the page in place where the stroke lies: per channel, paper * colour / 255."""
    height, width = coverage.shape
    absorbed = 1.0 - np.asarray(colour, dtype=np.float32) / 255.0
    region = page[top : top + height, left : left + width]
    region *= 1.0 - coverage[..., None] * absorbed[None, None, :]


def darken(page: Page, amount: np.ndarray) -> None:
    """Multiplies the page by 1 - amount (an (H, W) field of 0..1): light and shadow."""
    page *= (1.0 - amount)[..., None]


def light_gradient(height: int, width: int, rng: np.random.Generator, *, low: float) -> np.ndarray:
    """A darkening field falling linearly across the page in a random direction, from 0 at the
    bright side to 1 - low at the dark side."""
    angle = rng.uniform(0.0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    along = (along - along.min()) / max(1e-6, float(along.max() - along.min()))
    result: np.ndarray = (1.0 - low) * along
    return result


def vignette(height: int, width: int, rng: np.random.Generator, *, strength: float) -> np.ndarray:
    """A darkening field growing with the distance from a random point near the centre."""
    cy = height * rng.uniform(0.3, 0.7)
    cx = width * rng.uniform(0.3, 0.7)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = ((ys - cy) / height) ** 2 + ((xs - cx) / width) ** 2
    result: np.ndarray = strength * np.clip(distance / 0.5, 0.0, 1.0)
    return result


def line_coverage(offsets: np.ndarray, spacing: float, thickness: float) -> np.ndarray:
    """Anti-aliased coverage of lines `thickness` wide every `spacing` pixels along `offsets`."""
    distance = np.abs((offsets + spacing / 2) % spacing - spacing / 2)
    return np.clip(thickness / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def ruling(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    spacing: float,
    thickness: float,
    vertical: bool,
) -> np.ndarray:
    """Coverage of printed lines (horizontal, or vertical with `vertical`), tilted up to 1.5
    degrees as on a page that is not quite square to the camera."""
    tilt = np.tan(np.radians(rng.uniform(-1.5, 1.5)))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    across = xs + tilt * ys if vertical else ys + tilt * xs
    return line_coverage(across + rng.uniform(0, spacing), spacing, thickness)


def add_noise(page: Page, sd: float, rng: np.random.Generator) -> None:
    """Sensor noise, independent per pixel and channel, in place."""
    page += rng.standard_normal(page.shape, dtype=np.float32) * np.float32(sd)


def gaussian_blur(page: Page, sigma: float) -> Page:
    """Out of focus: a gaussian blur of `sigma` pixels (in 8 bits: Pillow blurs no floats)."""
    blurred = to_image(page).filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(blurred, dtype=np.float32)


def motion_blur(page: Page, length: int, angle: float) -> Page:
    """Camera shake: the average of the page shifted along a line of `length` pixels."""
    reach = length // 2 + 1
    padded = np.pad(page, ((reach, reach), (reach, reach), (0, 0)), mode="edge")
    height, width = page.shape[:2]
    total = np.zeros_like(page)
    for step in np.linspace(-(length - 1) / 2, (length - 1) / 2, length):
        dy, dx = round(step * np.sin(angle)), round(step * np.cos(angle))
        total += padded[reach + dy : reach + dy + height, reach + dx : reach + dx + width]
    result: Page = total / length
    return result


def to_image(page: Page, mode: Literal["RGB", "L"] = "RGB") -> Image.Image:
    pixels = np.clip(np.rint(page), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="RGB")
    return image.convert("L") if mode == "L" else image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
