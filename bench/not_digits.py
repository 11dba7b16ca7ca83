"""Uploads that hold no digit, for measuring the reject option: printed letters and words in
this machine's typefaces, symbols, drawings (a smiley, a star, a grid, a square, a sun...),
scribbles and textured surfaces, each drawn on a web canvas, written on paper and scanned, or
photographed on a sheet on a table.

These are drawn differently from the negatives the model trains on (`training.negatives`: a
stroke alphabet and Pillow's own typeface at 28x28): other typefaces, other drawing code,
whole photos through the service's preprocessing. Letters written the way a digit is (O, I, l,
S, Z, B, b, G, g, q) are a set of their own (`DIGIT_LIKE`): nothing can tell an O from a 0.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from bench import ink_and_paper as ip
from bench.paper_scenes import dark_ink, save
from bench.photo_scenes import framed_sheet, printed_characters

DIGIT_LIKE = "OoIlSsZzBbGgqQD"
"""Letters whose pictures are those of a digit (0, 1, 5, 2, 8, 6, 9); reported apart."""
LETTERS = "".join(c for c in string.ascii_letters if c not in DIGIT_LIKE)
SYMBOLS = "#@&%$?!*+=€§¶"
WORDS = ("cat", "Hi", "yes", "NO", "ok", "milk", "the", "why", "Tax", "km", "abc", "YAY")

Picture = Callable[[np.random.Generator], np.ndarray]
"""Draws one picture: coverage 0..1 (1 ink), any size."""


def letter(rng: np.random.Generator) -> np.ndarray:
    return printed_characters(str(rng.choice(list(LETTERS))), rng, int(rng.integers(60, 160)))


def digit_like_letter(rng: np.random.Generator) -> np.ndarray:
    return printed_characters(str(rng.choice(list(DIGIT_LIKE))), rng, int(rng.integers(60, 160)))


def word(rng: np.random.Generator) -> np.ndarray:
    return printed_characters(str(rng.choice(list(WORDS))), rng, int(rng.integers(40, 100)))


def symbol(rng: np.random.Generator) -> np.ndarray:
    return printed_characters(str(rng.choice(list(SYMBOLS))), rng, int(rng.integers(60, 160)))


def drawing(rng: np.random.Generator) -> np.ndarray:
    """A simple drawing in a pen 3-14 px wide on a 200-pixel square."""
    side = 200
    image = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(image)
    width = int(rng.integers(3, 15))
    m = 20 + rng.uniform(-10, 10)
    box = (m, m, side - m, side - m)
    kind = int(rng.integers(9))
    if kind == 0:  # smiley
        pen.ellipse(box, outline=255, width=width)
        pen.ellipse((70, 70, 85, 85), fill=255)
        pen.ellipse((115, 70, 130, 85), fill=255)
        pen.arc((60, 80, 140, 150), 20, 160, fill=255, width=width)
    elif kind == 1:  # star
        points = [
            (
                100 + (80 if k % 2 == 0 else 32) * math.cos(math.pi / 2 + k * math.pi / 5),
                100 - (80 if k % 2 == 0 else 32) * math.sin(math.pi / 2 + k * math.pi / 5),
            )
            for k in range(11)
        ]
        pen.line(points, fill=255, width=width, joint="curve")
    elif kind == 2:  # grid
        for t in np.linspace(m, side - m, int(rng.integers(3, 7))):
            pen.line([(t, m), (t, side - m)], fill=255, width=width)
            pen.line([(m, t), (side - m, t)], fill=255, width=width)
    elif kind == 3:  # square
        pen.rectangle(box, outline=255, width=width)
    elif kind == 4:  # sun: a disc and rays
        pen.ellipse((65, 65, 135, 135), outline=255, width=width)
        for k in range(8):
            a = k * math.pi / 4
            pen.line(
                [
                    (100 + 50 * math.cos(a), 100 + 50 * math.sin(a)),
                    (100 + 90 * math.cos(a), 100 + 90 * math.sin(a)),
                ],
                fill=255,
                width=width,
            )
    elif kind == 5:  # triangle with a line under it
        pen.polygon([(100, m), (side - m, 150), (m, 150)], outline=255, width=width)
        pen.line([(m, 175), (side - m, 175)], fill=255, width=width)
    elif kind == 6:  # tree
        pen.polygon([(100, m), (160, 130), (40, 130)], outline=255, width=width)
        pen.rectangle((88, 130, 112, side - m), outline=255, width=width)
    elif kind == 7:  # cloud
        for cx, cy, r in ((70, 110, 35), (110, 90, 45), (145, 115, 30)):
            pen.ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=width)
    else:  # flower
        for k in range(6):
            a = k * math.pi / 3
            cx, cy = 100 + 45 * math.cos(a), 100 + 45 * math.sin(a)
            pen.ellipse((cx - 25, cy - 25, cx + 25, cy + 25), outline=255, width=width)
    return np.asarray(image, dtype=np.float32) / 255.0


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A tangle of curves, as when testing a pen or crossing something out."""
    side = 200
    image = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(image)
    t = np.linspace(0, 1, 200)
    loops = rng.uniform(3, 9)
    xs = 100 + rng.uniform(40, 80) * np.sin(2 * np.pi * loops * t + rng.uniform(0, 6)) * np.cos(
        2 * np.pi * rng.uniform(0.3, 1.5) * t
    )
    ys = 100 + rng.uniform(30, 80) * np.sin(2 * np.pi * rng.uniform(1, 4) * t)
    pen.line(
        list(zip(xs.tolist(), ys.tolist(), strict=True)),
        fill=255,
        width=int(rng.integers(2, 9)),
        joint="curve",
    )
    return np.asarray(image, dtype=np.float32) / 255.0


def texture(rng: np.random.Generator) -> np.ndarray:
    """A patterned surface: fabric's weave, wood's grain, a carpet's speckle."""
    side = 240
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:
        period = rng.uniform(6, 14)
        weave = np.sin(2 * np.pi * xs / period) * np.sin(2 * np.pi * ys / period)
        return np.clip(weave * 0.6 + 0.2, 0.0, 1.0)
    if kind == 1:
        field = ip.smooth_field(side, side, 6, rng)
        grain = np.sin(2 * np.pi * (ys / rng.uniform(5, 12) + 2.0 * field))
        return np.clip(0.5 * grain + 0.2, 0.0, 1.0)
    return (rng.random((side, side)) < rng.uniform(0.05, 0.2)).astype(np.float32)


KINDS: dict[str, Picture] = {
    "letter": letter,
    "word": word,
    "symbol": symbol,
    "drawing": drawing,
    "scribble": scribble,
    "texture": texture,
}
"""The not-a-digit set's kinds, drawn in turn."""


def _on_canvas(cover: np.ndarray, rng: np.random.Generator) -> bytes:
    side = 280
    scale = rng.uniform(0.4, 0.85) * side / max(cover.shape)
    size = (max(1, round(cover.shape[1] * scale)), max(1, round(cover.shape[0] * scale)))
    small = np.asarray(Image.fromarray(cover, mode="F").resize(size, Image.Resampling.BILINEAR))
    alpha = np.zeros((side, side), np.float32)
    top, left = ip.place((side, side), small.shape, rng)
    alpha[top : top + small.shape[0], left : left + small.shape[1]] = np.clip(small, 0, 1)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return ip.encode(Image.fromarray(rgba, mode="RGBA"), "PNG")


def _on_paper(cover: np.ndarray, rng: np.random.Generator) -> bytes:
    longest = rng.uniform(80, 300)
    scale = longest / max(cover.shape)
    size = (max(1, round(cover.shape[1] * scale)), max(1, round(cover.shape[0] * scale)))
    stroke = np.clip(np.asarray(Image.fromarray(cover, mode="F").resize(size)), 0, 1)
    margin = (longest * rng.uniform(0.15, 0.8, size=4)).astype(int)
    height = stroke.shape[0] + margin[0] + margin[1]
    width = stroke.shape[1] + margin[2] + margin[3]
    page = ip.blank_page(height, width, rng, level=rng.uniform(200, 250), tint=ip.paper_tint(rng))
    ip.apply_ink(page, stroke, int(margin[0]), int(margin[2]), dark_ink(rng))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def _scaled(cover: np.ndarray, longest: float, rng: np.random.Generator) -> np.ndarray:
    """The picture's cover at `longest` pixels on its longer side."""
    scale = longest / max(cover.shape)
    size = (max(1, round(cover.shape[1] * scale)), max(1, round(cover.shape[0] * scale)))
    resized = Image.fromarray(cover, mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _photographed(cover: np.ndarray, rng: np.random.Generator) -> bytes:
    image = framed_sheet(cover, rng, share=(0.3, 0.85), stroke_maker=_scaled)
    return ip.encode(image, "JPEG", quality=int(rng.integers(75, 93)))


MEDIA = (_on_canvas, _on_paper, _photographed)


def render(kind: str, index: int, seed: int) -> bytes:
    """Upload `index` of the not-a-digit set's `kind` (or "digit_like_letter") at `seed`."""
    pictures: dict[str, Picture] = {**KINDS, "digit_like_letter": digit_like_letter}
    rng = np.random.default_rng([seed, sum(map(ord, kind)), index])
    cover = pictures[kind](rng).astype(np.float32)
    return MEDIA[index % len(MEDIA)](cover, rng)


def uploads(count: int, seed: int, *, digit_like: bool = False) -> list[bytes]:
    """`count` uploads holding no digit (the kinds in turn), or with `digit_like` letters
    written as digits are."""
    if digit_like:
        return [render("digit_like_letter", index, seed) for index in range(count)]
    kinds = list(KINDS)
    return [render(kinds[index % len(kinds)], index // len(kinds), seed) for index in range(count)]
