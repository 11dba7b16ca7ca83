"""A corpus of written numbers: rows of 2 to 6 MNIST **test** digits, composed the way people
write numbers, then rendered as uploads under the single-digit corpus's conditions, with its
scenes (`bench.paper_scenes`: paper, pens, pencil, ruled and squared paper, shadows, blur,
broken strokes, a 12-megapixel phone photo) and a wide web canvas.

Layouts (how the digits of one number sit beside each other, at MNIST's 28-pixel scale):

* `spaced`: gaps of 3-10 pixels between digits' ink (a tenth to a half of a digit's height);
* `close`: gaps of 1-2 pixels: nearly touching;
* `touching`: two digits whose strokes touch (the second moved left until its ink meets the
  first's);
* `mixed`: spaced digits of different sizes (70-100% of the tallest) on a common baseline,
  give or take a pixel;
* `slanted`: spaced digits, the whole row sheared by 5-15 degrees to the right or up to 5 to
  the left.

On paper a number's digits have the height a single digit has in the single-digit corpus
(`DIGIT_HEIGHT`), so the row is as wide as its digits make it; a phone photo keeps the
single-digit photo's framing (the row's longer side takes 14-22% of the frame's width or so).

`numbers(layout, condition, count, seed, digits, labels)` picks test digits at random (never by
whether a model reads them) with a generator seeded from (seed, layout, condition, item), so
every item can be re-made alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench import ink_and_paper as ip
from bench.paper_scenes import (
    Box,
    StrokeMaker,
    cut_gaps,
    paper_scene,
    pencil_stroke,
    save,
    shadow_field,
)

LAYOUTS = ("spaced", "close", "touching", "mixed", "slanted")
LENGTHS = (2, 3, 4, 5, 6)
"""Digits per number for every layout but `touching` (always a touching pair)."""


@dataclass(frozen=True)
class WrittenNumber:
    upload: bytes
    text: str
    """The digits, left to right."""
    indices: tuple[int, ...]
    """MNIST test indices of the digits."""
    layout: str
    condition: str


def _key(*names: str) -> int:
    return zlib.crc32("/".join(names).encode())


def _ink_columns(coverage: np.ndarray) -> np.ndarray:
    return np.flatnonzero((coverage > 0.5).any(axis=0))


def _touching_left(row: np.ndarray, stroke: np.ndarray, top: int, start: int) -> int:
    """The column where `stroke` (placed at `top`) first touches the ink already in `row`
    when moved left from `start`."""
    height, width = stroke.shape
    mine = stroke > 0.5
    for left in range(start, -1, -1):
        theirs = row[top : top + height, left : left + width] > 0.5
        if (theirs & mine[:, : theirs.shape[1]]).any():
            return left
    return 0


def row_coverage(
    digits: list[np.ndarray],
    layout: str,
    size: float,
    rng: np.random.Generator,
    stroke: StrokeMaker = ip.ink_stroke,
) -> np.ndarray:
    """The row of `digits` (MNIST 28x28 arrays) written in `layout` as a pen's cover (0..1),
    each digit drawn by `stroke` about `size` pixels on its longer side."""
    strokes = []
    for digit in digits:
        scale = rng.uniform(0.7, 1.0) if layout == "mixed" else 1.0
        strokes.append(ip.trim(stroke(digit, size * scale, rng)))
    tallest = max(piece.shape[0] for piece in strokes)
    pad = int(0.1 * size) + 2
    height = tallest + 2 * pad
    width = sum(piece.shape[1] for piece in strokes) + int(0.6 * size) * len(strokes) + 2 * pad
    row = np.zeros((height, width), dtype=np.float32)
    left = pad
    for position, piece in enumerate(strokes):
        piece_h, piece_w = piece.shape
        if layout == "mixed":  # on a common baseline, give or take 3% of the height
            top = pad + tallest - piece_h + int(rng.uniform(-0.03, 0.03) * size)
        else:
            top = pad + (tallest - piece_h) // 2
        top = int(np.clip(top, 0, height - piece_h))
        if position:
            left -= int(_ink_columns(piece)[0])  # the gap is between inks, not soft edges
            if layout == "touching":
                left = _touching_left(row, piece, top, left)
        left = max(0, min(left, width - piece_w))
        region = row[top : top + piece_h, left : left + piece_w]
        np.maximum(region, piece, out=region)
        gap = {"spaced": (0.15, 0.5), "close": (0.05, 0.1)}.get(layout, (0.0, 0.0))
        if layout in ("mixed", "slanted"):
            gap = (0.15, 0.5)
        left = int(_ink_columns(row)[-1]) + 1 + int(rng.uniform(*gap) * size)
    if layout == "slanted":
        row = _sheared(row, float(np.tan(np.radians(rng.uniform(-5, 15)))))
    return ip.trim(row)


def _sheared(row: np.ndarray, shear: float) -> np.ndarray:
    """The row leaning right by `shear` (columns per row), on a canvas wide enough for it."""
    height, _ = row.shape
    extra = int(np.ceil(abs(shear) * height))
    image = Image.fromarray(np.pad(row, ((0, 0), (extra, extra))), mode="F")
    # An affine map from output to input: x_in = x_out + shear * (y - height / 2).
    sheared = image.transform(
        image.size,
        Image.Transform.AFFINE,
        (1.0, shear, -shear * height / 2, 0.0, 1.0, 0.0),
        resample=Image.Resampling.BICUBIC,
    )
    return np.asarray(sheared, dtype=np.float32).clip(0.0, 1.0)


NumberRenderer = Callable[[list[np.ndarray], str, np.random.Generator], bytes]

DIGIT_SIZE = (60.0, 200.0)
"""A number's digits on paper are this many pixels on their longer side: about the sizes of
the single-digit corpus's digits on paper (80-300)."""
CANVAS_DIGIT_SIZE = (100.0, 200.0)
CANVAS_HEIGHT = 280
CANVAS_WIDTH = 840
"""The page's number canvas: three digit canvases wide."""


def _on_paper(
    digits: list[np.ndarray],
    layout: str,
    rng: np.random.Generator,
    *,
    level: tuple[float, float] = (200, 250),
    ink: tuple[float, float, float] | None = None,
    stroke: StrokeMaker = ip.ink_stroke,
) -> tuple[ip.Page, Box]:
    """The number written on a piece of paper (`paper_scene`'s page, margins and ink)."""

    def row_stroke(_: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
        return row_coverage(digits, layout, size, rng, stroke)

    return paper_scene(digits[0], rng, longest=DIGIT_SIZE, level=level, ink=ink, stroke=row_stroke)


def canvas(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    def pen(digit: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
        return ip.ink_stroke(digit, size, rng, weight=(0.3, 0.55), crispness=0.04)

    stroke = row_coverage(digits, layout, rng.uniform(*CANVAS_DIGIT_SIZE), rng, pen)
    fits = min(1.0, (CANVAS_WIDTH - 8) / stroke.shape[1], (CANVAS_HEIGHT - 8) / stroke.shape[0])
    if fits < 1.0:
        size = (max(1, int(stroke.shape[1] * fits)), max(1, int(stroke.shape[0] * fits)))
        resized = Image.fromarray(stroke, mode="F").resize(size, Image.Resampling.BICUBIC)
        stroke = np.asarray(resized, dtype=np.float32).clip(0.0, 1.0)
    shape = (CANVAS_HEIGHT - 8, CANVAS_WIDTH - 8)
    top, left = (offset + 4 for offset in ip.place(shape, stroke.shape, rng))
    alpha = np.zeros((CANVAS_HEIGHT, CANVAS_WIDTH), dtype=np.float32)
    alpha[top : top + stroke.shape[0], left : left + stroke.shape[1]] = stroke
    rgba = np.zeros((CANVAS_HEIGHT, CANVAS_WIDTH, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(alpha[..., None] > 0, int(rng.integers(0, 40)), 0)
    rgba[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return ip.encode(Image.fromarray(rgba, mode="RGBA"), "PNG")


def paper_png(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    return save(_on_paper(digits, layout, rng)[0], rng, jpeg=False)


def paper_jpeg(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    return save(_on_paper(digits, layout, rng)[0], rng, jpeg=True)


def shadow(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    page, box = _on_paper(digits, layout, rng)
    ip.darken(page, rng.uniform(0.3, 0.6) * shadow_field(page.shape[:2], box, rng))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def blue_pen(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    colour = (rng.uniform(10, 50), rng.uniform(25, 70), rng.uniform(120, 180))
    page, _ = _on_paper(digits, layout, rng, level=(220, 252), ink=colour)
    return save(page, rng, jpeg=True, quality=(70, 95), allow_grey=False)


def pencil(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    grey = 255.0 * (1.0 - rng.uniform(0.25, 0.5))
    page, _ = _on_paper(
        digits, layout, rng, level=(210, 245), ink=(grey, grey, grey * 1.02), stroke=pencil_stroke
    )
    return save(page, rng, jpeg=bool(rng.random() < 0.5))


def ruled_paper(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    page, (_, _, ink_height, _) = _on_paper(digits, layout, rng, level=(225, 252))
    height, width = page.shape[:2]
    blue = (rng.uniform(140, 190), rng.uniform(180, 215), rng.uniform(220, 245))
    spacing = ink_height / rng.uniform(1.0, 3.0)
    thickness = rng.uniform(1.0, 2.2)
    lines = ip.ruling(height, width, rng, spacing=spacing, thickness=thickness, vertical=False)
    ip.apply_ink(page, lines, 0, 0, blue)
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def squared_paper(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    page, (_, _, ink_height, _) = _on_paper(digits, layout, rng, level=(225, 252))
    height, width = page.shape[:2]
    spacing = ink_height * rng.uniform(1 / 3, 1 / 2)
    thickness = rng.uniform(1.0, 2.0)
    colour = (rng.uniform(150, 195), rng.uniform(185, 215), rng.uniform(220, 245))
    across = ip.ruling(height, width, rng, spacing=spacing, thickness=thickness, vertical=False)
    down = ip.ruling(height, width, rng, spacing=spacing, thickness=thickness, vertical=True)
    ip.apply_ink(page, 1.0 - (1.0 - across) * (1.0 - down), 0, 0, colour)
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def blur(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    page, _ = _on_paper(digits, layout, rng)
    kind = rng.integers(3)
    if kind in (0, 2):
        page = ip.gaussian_blur(page, rng.uniform(1.0, 3.0))
    if kind in (1, 2):
        page = ip.motion_blur(page, int(rng.integers(3, 10)), rng.uniform(0, np.pi))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def broken_strokes(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> bytes:
    page, _ = _on_paper(digits, layout, rng, stroke=cut_gaps)
    return save(page, rng, jpeg=bool(rng.random() < 0.5))


CONDITIONS: dict[str, NumberRenderer] = {
    "canvas": canvas,
    "paper_png": paper_png,
    "paper_jpeg": paper_jpeg,
    "shadow": shadow,
    "blue_pen": blue_pen,
    "pencil": pencil,
    "ruled_paper": ruled_paper,
    "squared_paper": squared_paper,
    "blur": blur,
    "broken_strokes": broken_strokes,
}
"""Condition name -> renderer of one number (the encoded file's bytes)."""


def numbers(
    layout: str,
    condition: str,
    count: int,
    seed: int,
    digits: np.ndarray,
    labels: np.ndarray,
) -> Iterator[WrittenNumber]:
    """`count` numbers in `layout` rendered under `condition`, each from its own generator."""
    if layout not in LAYOUTS:
        raise KeyError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if condition not in CONDITIONS:
        raise KeyError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    for item in range(count):
        yield make(layout, condition, item, seed, digits, labels)


def make(
    layout: str,
    condition: str,
    item: int,
    seed: int,
    digits: np.ndarray,
    labels: np.ndarray,
) -> WrittenNumber:
    """Item `item` of `numbers(layout, condition, ..., seed, ...)`."""
    rng = np.random.default_rng([seed, _key(layout, condition), item])
    length = 2 if layout == "touching" else int(rng.choice(LENGTHS))
    indices = tuple(int(i) for i in rng.choice(len(digits), size=length, replace=False))
    upload = CONDITIONS[condition]([digits[i] for i in indices], layout, rng)
    text = "".join(str(int(labels[i])) for i in indices)
    return WrittenNumber(upload, text, indices, layout, condition)
