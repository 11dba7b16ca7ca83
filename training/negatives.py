"""Pictures that hold no digit, in MNIST's layout, for teaching the digit model to say so.

A classifier trained on digits alone answers every picture with a digit, often confidently (a
letter A read as a 4 at 0.95). Training also on pictures of other things, with the uniform
distribution over the ten digits as their target ("outlier exposure"), teaches it to spread its
probability when it sees no digit; the service then refuses or flags a picture by its highest
probability (`training.reject`). The exported signature is unchanged: ten probabilities.

The pictures are drawn here, from seeded random numbers, as pen strokes on a canvas: letters and
symbols (a stroke alphabet, and Pillow's own typeface, so no font need be installed), shapes
and drawings (a star, a smiley, a house, a grid...), scribbles and textures. They are then laid
out as MNIST lays out a digit (LeCun: fitted into a 20x20 box keeping the aspect ratio, centred
in 28x28 by centre of mass), as the service's preprocessing does with an upload.

Left out on purpose: letters and shapes written the way a digit is (O and o, I, l, S and s, Z
and z, B, b, G, g, q, a lone circle, a lone upright stroke). Their pictures are those of 0, 1,
5, 2, 8, 6 and 9; teaching the model that they are not digits would teach it to doubt digits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.signatures import IMAGE_SIZE

CANVAS = 96
"""Negatives are drawn on a square canvas this many pixels a side, then laid out in 28x28."""
DIGIT_BOX = 20
"""MNIST fits each digit into a box this many pixels a side (LeCun's description)."""

Stroke = list[tuple[float, float]]

# A stroke alphabet in a unit box (x right, y down): each letter as a hand writes it, one list
# of points per stroke. Curves are polylines; the drawing adds slant, wobble and a pen width.
_ARC = [(0.5 + 0.5 * math.cos(t), 0.5 - 0.5 * math.sin(t)) for t in np.linspace(0.6, 5.7, 12)]
LETTERS: dict[str, list[Stroke]] = {
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "C": [_ARC],
    "E": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [(0.0, 0.5), (0.7, 0.5)]],
    "F": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)], [(0.0, 0.5), (0.7, 0.5)]],
    "H": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (1.0, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "K": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (0.0, 0.55), (1.0, 1.0)]],
    "M": [[(0.0, 1.0), (0.0, 0.0), (0.5, 0.6), (1.0, 0.0), (1.0, 1.0)]],
    "N": [[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],
    "P": [[(0.0, 1.0), (0.0, 0.0), (0.8, 0.0), (1.0, 0.15), (1.0, 0.35), (0.8, 0.5), (0.0, 0.5)]],
    "R": [
        [(0.0, 1.0), (0.0, 0.0), (0.8, 0.0), (1.0, 0.15), (1.0, 0.35), (0.8, 0.5), (0.0, 0.5)],
        [(0.4, 0.5), (1.0, 1.0)],
    ],
    "U": [[(0.0, 0.0), (0.0, 0.75), (0.2, 1.0), (0.8, 1.0), (1.0, 0.75), (1.0, 0.0)]],
    "V": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.3), (0.75, 1.0), (1.0, 0.0)]],
    "X": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "Y": [[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
    "e": [
        [
            (0.05, 0.55),
            (1.0, 0.55),
            (0.9, 0.25),
            (0.55, 0.05),
            (0.15, 0.2),
            (0.0, 0.6),
            (0.2, 0.95),
            (0.6, 1.0),
            (0.95, 0.85),
        ]
    ],
    "h": [[(0.0, 0.0), (0.0, 1.0)], [(0.0, 0.6), (0.3, 0.4), (0.8, 0.4), (1.0, 0.6), (1.0, 1.0)]],
    "k": [[(0.0, 0.0), (0.0, 1.0)], [(0.9, 0.4), (0.0, 0.75), (1.0, 1.0)]],
    "m": [
        [(0.0, 1.0), (0.0, 0.2), (0.25, 0.0), (0.5, 0.2), (0.5, 1.0)],
        [(0.5, 0.2), (0.75, 0.0), (1.0, 0.2), (1.0, 1.0)],
    ],
    "n": [[(0.0, 1.0), (0.0, 0.0)], [(0.0, 0.3), (0.3, 0.0), (0.8, 0.0), (1.0, 0.3), (1.0, 1.0)]],
    "r": [[(0.0, 1.0), (0.0, 0.0)], [(0.0, 0.4), (0.4, 0.0), (1.0, 0.05)]],
    "t": [[(0.4, 0.0), (0.4, 0.85), (0.6, 1.0), (0.9, 0.95)], [(0.0, 0.3), (0.9, 0.3)]],
    "u": [[(0.0, 0.0), (0.0, 0.7), (0.3, 1.0), (0.7, 1.0), (1.0, 0.7)], [(1.0, 0.0), (1.0, 1.0)]],
    "v": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "w": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.4), (0.75, 1.0), (1.0, 0.0)]],
    "x": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "#": [
        [(0.3, 0.0), (0.2, 1.0)],
        [(0.8, 0.0), (0.7, 1.0)],
        [(0.0, 0.33), (1.0, 0.33)],
        [(0.0, 0.67), (1.0, 0.67)],
    ],
    "+": [[(0.5, 0.0), (0.5, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "=": [[(0.0, 0.3), (1.0, 0.3)], [(0.0, 0.7), (1.0, 0.7)]],
    "?": [
        [(0.05, 0.25), (0.3, 0.0), (0.75, 0.0), (1.0, 0.25), (0.5, 0.5), (0.5, 0.75)],
        [(0.5, 0.95), (0.5, 1.0)],
    ],
    "!": [[(0.5, 0.0), (0.5, 0.7)], [(0.5, 0.92), (0.5, 1.0)]],
    "&": [
        [
            (1.0, 1.0),
            (0.2, 0.35),
            (0.3, 0.05),
            (0.6, 0.05),
            (0.65, 0.3),
            (0.0, 0.75),
            (0.25, 1.0),
            (0.6, 0.95),
            (1.0, 0.5),
        ]
    ],
}
"""Letters and symbols unlike any digit, as strokes."""
TYPED = "ACDEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy#%&@?!+=*$"
"""Characters drawn in Pillow's typeface (printed labels, typed text)."""


def _jitter(
    strokes: list[Stroke], rng: np.random.Generator, wobble: float
) -> list[list[tuple[float, float]]]:
    """The strokes in canvas pixels: slanted, squeezed, shifted and wobbled by `wobble`."""
    slant = rng.uniform(-0.3, 0.3)
    aspect = rng.uniform(0.6, 1.2)
    size = rng.uniform(0.5, 0.8) * CANVAS
    width = size * aspect
    left = (CANVAS - width) / 2
    top = (CANVAS - size) / 2
    placed = []
    for stroke in strokes:
        points = []
        for x, y in stroke:
            jx, jy = rng.normal(0.0, wobble, size=2)
            points.append((left + (x + jx + slant * (0.5 - y)) * width, top + (y + jy) * size))
        placed.append(points)
    return placed


def _pen(rng: np.random.Generator) -> int:
    return int(rng.integers(3, 13))


def _draw(strokes: list[list[tuple[float, float]]], pen: int) -> np.ndarray:
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    for points in strokes:
        draw.line(points, fill=255, width=pen, joint="curve")
        for x, y in (points[0], points[-1]):
            r = pen / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(image)


def written_letter(rng: np.random.Generator) -> np.ndarray:
    """A letter or symbol of the stroke alphabet, as a hand writes it."""
    name = str(rng.choice(list(LETTERS)))
    return _draw(_jitter(LETTERS[name], rng, rng.uniform(0.0, 0.06)), _pen(rng))


def typed_letter(rng: np.random.Generator) -> np.ndarray:
    """A character of Pillow's typeface, turned a little, as on a label or a printed page."""
    character = str(rng.choice(list(TYPED)))
    font = _typeface(int(rng.integers(40, 70)))
    image = Image.new("L", (CANVAS * 2, CANVAS * 2), 0)
    draw = ImageDraw.Draw(image)
    draw.text(
        (CANVAS // 2, CANVAS // 3),
        character,
        fill=255,
        font=font,
        stroke_width=int(rng.integers(0, 3)),
        stroke_fill=255,
    )
    turned = image.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR)
    return np.asarray(turned)


@functools.cache
def _typeface(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _polygon(corners: int, rng: np.random.Generator, star: bool = False) -> list[Stroke]:
    start = rng.uniform(0, 2 * math.pi)
    points = []
    for k in range(corners * (2 if star else 1) + 1):
        angle = start + k * math.pi * (1 if star else 2) / corners
        radius = (0.5 if k % 2 == 0 else 0.2) if star else 0.5
        points.append((0.5 + radius * math.cos(angle), 0.5 + radius * math.sin(angle)))
    return [points]


def _circle(cx: float, cy: float, r: float, start: float = 0.0, end: float = 2 * math.pi) -> Stroke:
    return [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in np.linspace(start, end, 16)]


def _shapes(rng: np.random.Generator) -> list[Stroke]:
    kind = int(rng.integers(11))
    if kind == 0:  # square or rectangle
        return [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]]
    if kind == 1:
        return _polygon(3, rng)
    if kind == 2:
        return _polygon(int(rng.integers(5, 7)), rng, star=True)
    if kind == 3:  # smiley
        return [
            _circle(0.5, 0.5, 0.5),
            _circle(0.33, 0.35, 0.05),
            _circle(0.67, 0.35, 0.05),
            _circle(0.5, 0.5, 0.3, 0.5, math.pi - 0.5),
        ]
    if kind == 4:  # grid
        lines = int(rng.integers(3, 6))
        ticks = np.linspace(0.0, 1.0, lines)
        return [[(t, 0.0), (t, 1.0)] for t in ticks] + [[(0.0, t), (1.0, t)] for t in ticks]
    if kind == 5:  # heart
        left_lobe = _circle(0.27, 0.3, 0.25, math.pi, 2 * math.pi)
        right_lobe = _circle(0.73, 0.3, 0.25, math.pi, 2 * math.pi)[::-1]
        return [[*left_lobe, (0.5, 1.0), *right_lobe]]
    if kind == 6:  # house
        return [
            [(0.0, 0.45), (0.5, 0.0), (1.0, 0.45), (1.0, 1.0), (0.0, 1.0), (0.0, 0.45), (1.0, 0.45)]
        ]
    if kind == 7:  # arrow
        return [[(0.0, 0.5), (1.0, 0.5)], [(0.6, 0.15), (1.0, 0.5), (0.6, 0.85)]]
    if kind == 8:  # spiral
        turns = rng.uniform(1.5, 3.0)
        ts = np.linspace(0, turns * 2 * math.pi, 40)
        return [
            [
                (0.5 + 0.5 * t / ts[-1] * math.cos(t), 0.5 + 0.5 * t / ts[-1] * math.sin(t))
                for t in ts
            ]
        ]
    if kind == 9:  # a tick or check mark
        return [[(0.0, 0.55), (0.35, 1.0), (1.0, 0.0)]]
    # concentric squares or a box with a cross
    return [
        [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)],
        [(0.0, 0.0), (1.0, 1.0)],
        [(1.0, 0.0), (0.0, 1.0)],
    ]


def shape(rng: np.random.Generator) -> np.ndarray:
    """A drawn shape: a square, a triangle, a star, a smiley, a grid, a heart, a house..."""
    return _draw(_jitter(_shapes(rng), rng, rng.uniform(0.0, 0.03)), _pen(rng))


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A scribble or a crossing-out: a random walk of many short turns."""
    steps = int(rng.integers(8, 30))
    points = np.cumsum(rng.normal(0.0, 1.0, size=(steps, 2)), axis=0)
    points -= points.min(axis=0)
    points /= max(float(points.max()), 1e-6)
    stroke = [(float(x), float(y)) for x, y in points]
    return _draw(_jitter([stroke], rng, 0.0), _pen(rng))


def texture(rng: np.random.Generator) -> np.ndarray:
    """What a textured surface leaves once thresholded: blotches, grain, hatching or dots."""
    kind = int(rng.integers(4))
    ys, xs = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    if kind == 0:  # blotches: smooth noise above a level
        cells = int(rng.integers(3, 9))
        small = rng.standard_normal((cells, cells)).astype(np.float32)
        field = np.asarray(
            Image.fromarray(small, mode="F").resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)
        )
        return np.where(field > rng.uniform(0.3, 1.0), 255, 0).astype(np.uint8)
    if kind == 1:  # grain: sparse specks
        return np.where(rng.random((CANVAS, CANVAS)) < rng.uniform(0.02, 0.15), 255, 0).astype(
            np.uint8
        )
    if kind == 2:  # hatching
        angle = rng.uniform(0, math.pi)
        spacing = rng.uniform(6, 16)
        across = xs * math.cos(angle) + ys * math.sin(angle)
        return np.where((across % spacing) < rng.uniform(1.5, 4.0), 255, 0).astype(np.uint8)
    spacing = rng.uniform(8, 16)  # dots on a lattice
    near = ((ys % spacing) - spacing / 2) ** 2 + ((xs % spacing) - spacing / 2) ** 2
    return np.where(near < rng.uniform(2, 10), 255, 0).astype(np.uint8)


KINDS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "written_letter": written_letter,
    "typed_letter": typed_letter,
    "shape": shape,
    "scribble": scribble,
    "texture": texture,
}
"""Kind of negative -> drawer of one picture (uint8, bright on black, any size)."""


def mnist_layout(picture: np.ndarray) -> np.ndarray:
    """The 28x28 float32 (0..1) of a bright-on-black picture laid out as MNIST lays out a
    digit: cropped to its ink, fitted into 20x20 keeping the aspect ratio, centred by mass."""
    rows = np.flatnonzero(picture.max(axis=1) > 0)
    cols = np.flatnonzero(picture.max(axis=0) > 0)
    if rows.size == 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    crop = picture[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = DIGIT_BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    box = (
        np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BOX), dtype=np.float32)
        / 255.0
    )
    peak = float(box.max())
    if peak <= 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    box /= peak
    mass = float(box.sum())
    centre_row = float(box.sum(axis=1) @ np.arange(box.shape[0])) / mass
    centre_col = float(box.sum(axis=0) @ np.arange(box.shape[1])) / mass
    middle = IMAGE_SIZE / 2
    top = int(np.clip(math.floor(middle - centre_row + 0.5), 0, IMAGE_SIZE - box.shape[0]))
    left = int(np.clip(math.floor(middle - centre_col + 0.5), 0, IMAGE_SIZE - box.shape[1]))
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    canvas[top : top + box.shape[0], left : left + box.shape[1]] = box
    return canvas


def negatives(count: int, seed: int) -> np.ndarray:
    """`count` pictures holding no digit, (count, 28, 28) float32 in 0..1, the kinds in turn;
    the same `seed` gives the same pictures."""
    names = list(KINDS)
    pictures = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        pictures[index] = mnist_layout(KINDS[names[index % len(names)]](rng))
    return pictures
