"""A writing style MNIST under-represents, drawn programmatically: a "1" with a flag and a base,
a crossed "7" and an open "4" (two strokes that do not meet at the top), as continental Europe
writes them.

Each digit is drawn with PIL as a web canvas draws it (black round-capped strokes on a
transparent 280x280 canvas), with random slant, size, position, stroke width and wobble from
its seed, then goes through the service's own preprocessing (`service.digits.preprocess`, what
`/digit` and `/digit/feedback` run) and the PNG a sample is stored as, so the arrays are what the
job database would hold after people corrected these digits.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from service.admission import DigitSource
from service.admission import preprocess_sources as preprocess
from service.vision import to_png

CANVAS = 280
"""The web page's drawing canvas, in pixels."""
STYLE_LABELS = (1, 7, 4)

Stroke = list[tuple[float, float]]

# Strokes in a unit box (x right, y down), before slant, scale and jitter.
_SHAPES: dict[int, list[Stroke]] = {
    1: [
        [(0.0, 0.62), (0.55, 0.0), (0.55, 1.0)],  # a flag down to mid-height, the stem
        [(0.0, 1.0), (1.0, 1.0)],  # a base as wide as the flag
    ],
    7: [
        [(0.0, 0.25), (0.05, 0.0), (1.0, 0.0), (0.40, 1.0)],  # tick, top bar, diagonal
        [(0.15, 0.52), (1.0, 0.50)],  # a long cross
    ],
    4: [
        [(0.05, 0.0), (0.05, 0.45), (1.0, 0.45)],  # upright left arm, a high bar
        [(0.62, 0.0), (0.60, 1.0)],  # the stem, parallel to the arm, not meeting it
    ],
}


WOBBLE = 0.1
"""How far each stroke point strays from its place, as a share of the digit's size (standard
deviation). The served model reads a neat hand (0.04) of this style perfectly (bench/RESULTS.md);
at 0.1, a hurried hand, it starts to miss."""


def draw_canvas(label: int, seed: int, wobble: float = WOBBLE) -> bytes:
    """The PNG a person's canvas would upload for `label` in this style; varies with `seed`."""
    rng = np.random.default_rng(seed)
    height = rng.uniform(0.45, 0.75) * CANVAS
    width = height * rng.uniform(0.7, 1.0)
    slant = rng.uniform(-0.25, 0.1)
    left = rng.uniform(0.1 * CANVAS, CANVAS - width - 0.1 * CANVAS)
    top = rng.uniform(0.08 * CANVAS, CANVAS - height - 0.08 * CANVAS)
    brush = int(rng.uniform(10, 22))
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    for stroke in _SHAPES[label]:
        points = []
        for x, y in stroke:
            jx, jy = rng.normal(0, wobble, size=2)
            px = left + (x + jx + slant * (1 - y)) * width
            py = top + (y + jy) * height
            points.append((float(px), float(py)))
        pen.line(points, fill=(0, 0, 0, 255), width=brush, joint="curve")
        for px, py in (points[0], points[-1]):  # round caps, as the canvas's lineCap
            r = brush / 2
            pen.ellipse((px - r, py - r, px + r, py + r), fill=(0, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def as_stored(png: bytes) -> np.ndarray:
    """The 28x28 uint8 a sample of this upload holds: preprocessed as `/digit` does, kept as
    the PNG the sample store writes, read back as `GET /samples/export` reads it."""
    tensor = preprocess([DigitSource("canvas", png)], 10**8, 10**9)[0]
    with Image.open(io.BytesIO(to_png(tensor))) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def style_set(count: int, first_seed: int, wobble: float = WOBBLE) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits of the style, the labels in turn, seeds `first_seed`, `first_seed + 1`...:
    x (count, 28, 28) uint8 white on black, y (count,) uint8."""
    labels = [STYLE_LABELS[i % len(STYLE_LABELS)] for i in range(count)]
    x = np.stack(
        [as_stored(draw_canvas(label, first_seed + i, wobble)) for i, label in enumerate(labels)]
    )
    return x, np.array(labels, dtype=np.uint8)
