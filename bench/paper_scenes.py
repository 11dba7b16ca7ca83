"""Whole scenes for the upload corpus: a digit on a page, shadows, pencil and broken strokes,
a 12-megapixel phone photo, and saving with noise (built from `bench.ink_and_paper`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from bench import ink_and_paper as ip

Box = tuple[int, int, int, int]
"""top, left, height, width of the digit's ink (coverage above one half) in the picture."""

StrokeMaker = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

PHOTO_SIZE = (4000, 3000)
PHOTO_REDUCTION = 4
"""The photo's page and light are built at a quarter of its size and upscaled smoothly."""
PHOTO_DIGIT_AREA = (0.02, 0.05)
"""The square of the digit's longer side, as a share of the photo's area."""


def dark_ink(rng: np.random.Generator) -> tuple[float, float, float]:
    """A black or blue-black pen as a camera sees it (never quite black)."""
    grey = rng.uniform(15, 70)
    return (grey, grey, grey + rng.uniform(0, 25))


def ink_box(coverage: np.ndarray, top: int, left: int) -> Box:
    rows = np.flatnonzero(coverage.max(axis=1) > 0.5)
    cols = np.flatnonzero(coverage.max(axis=0) > 0.5)
    return (
        top + int(rows[0]),
        left + int(cols[0]),
        int(rows[-1] - rows[0] + 1),
        int(cols[-1] - cols[0] + 1),
    )


def paper_scene(
    digit: np.ndarray,
    rng: np.random.Generator,
    *,
    longest: tuple[float, float] = (80, 300),
    level: tuple[float, float] = (200, 250),
    ink: tuple[float, float, float] | None = None,
    stroke: StrokeMaker = ip.ink_stroke,
) -> tuple[ip.Page, Box]:
    """The digit written on a piece of paper, with a random margin on each side."""
    size = rng.uniform(*longest)
    coverage = stroke(digit, size, rng)
    top, bottom, left, right = (size * rng.uniform(0.12, 0.9, size=4)).astype(int)
    height, width = coverage.shape[0] + top + bottom, coverage.shape[1] + left + right
    page = ip.blank_page(height, width, rng, level=rng.uniform(*level), tint=ip.paper_tint(rng))
    ip.apply_ink(page, coverage, top, left, ink if ink is not None else dark_ink(rng))
    return page, ink_box(coverage, top, left)


def save(
    page: ip.Page,
    rng: np.random.Generator,
    *,
    jpeg: bool,
    quality: tuple[int, int] = (60, 95),
    noise: tuple[float, float] = (2.0, 6.0),
    allow_grey: bool = True,
) -> bytes:
    """Adds sensor noise and encodes as a scanner or phone would: PNG or JPEG, sometimes grey."""
    ip.add_noise(page, rng.uniform(*noise), rng)
    image = ip.to_image(page, "L" if allow_grey and rng.random() < 0.25 else "RGB")
    if jpeg:
        return ip.encode(image, "JPEG", quality=int(rng.integers(quality[0], quality[1] + 1)))
    return ip.encode(image, "PNG")


def shadow_field(shape: tuple[int, ...], box: Box, rng: np.random.Generator) -> np.ndarray:
    """0..1 cover of a shadow near the digit: the straight edge of a phone or book, the round
    blob of a hand, or the corner of a box; its edge hard (1-3 px) or soft."""
    height, width = shape[:2]
    top, left, box_height, box_width = box
    reach = float(max(box_height, box_width))
    cy, cx = top + box_height / 2, left + box_width / 2
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
    v = -(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)
    edge = rng.uniform(-0.4, 0.4) * reach  # where the shadow's edge falls across the digit
    kind = rng.integers(3)
    if kind == 0:
        distance = u - edge
    elif kind == 1:
        a, b = rng.uniform(0.6, 1.5) * reach, rng.uniform(0.4, 1.0) * reach
        distance = (np.sqrt(((u - edge + a) / a) ** 2 + (v / b) ** 2) - 1.0) * min(a, b)
    else:
        a, b = rng.uniform(0.5, 1.5) * reach, rng.uniform(0.5, 1.5) * reach
        distance = np.maximum(np.abs(u - edge + a) - a, np.abs(v - rng.uniform(-b, b)) - b)
    softness = rng.uniform(1, 3) if rng.random() < 0.5 else rng.uniform(0.05, 0.3) * reach
    field: np.ndarray = np.clip(0.5 - distance / softness, 0.0, 1.0)
    return field


def pencil_stroke(digit: np.ndarray, longest: float, rng: np.random.Generator) -> np.ndarray:
    """Graphite: a thinner stroke whose cover is broken up by the paper's tooth and varies
    with the pressure along the stroke."""
    coverage = ip.ink_stroke(digit, longest, rng, weight=(0.4, 0.7))
    height, width = coverage.shape
    grains = rng.random((height // 2 + 1, width // 2 + 1)).astype(np.float32)
    tooth = np.asarray(
        Image.fromarray(grains, mode="F").resize((width, height), Image.Resampling.BILINEAR),
        dtype=np.float32,
    )
    pressure = 1.0 - rng.uniform(0.1, 0.3) * (ip.smooth_field(height, width, 4, rng) + 1.0) / 2
    result: np.ndarray = coverage * pressure * (1.0 - rng.uniform(0.3, 0.6) * tooth)
    return result


def _runs(coverage: np.ndarray, y: int, x: int, angle: float) -> tuple[float, float]:
    """How far the ink reaches from (y, x) along `angle`, forwards and backwards."""
    height, width = coverage.shape
    steps = np.arange(1, max(height, width), dtype=np.float32)
    runs = []
    for sign in (1.0, -1.0):
        ys = np.rint(y + sign * steps * np.sin(angle)).astype(int)
        xs = np.rint(x + sign * steps * np.cos(angle)).astype(int)
        inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        ink = np.zeros(len(steps), dtype=bool)
        ink[inside] = coverage[ys[inside], xs[inside]] > 0.5
        runs.append(float(np.argmin(ink)) if not ink.all() else float(len(steps)))
    return runs[0], runs[1]


def cut_gaps(digit: np.ndarray, longest: float, rng: np.random.Generator) -> np.ndarray:
    """A pen stroke cut by 1-3 gaps 1-4 px wide straight across it, leaving separate pieces or
    an open loop (as a digit drawn in several strokes or a skipping pen does); the first cut is
    often high in the digit, where a 5's top bar or a 7's bar meets the rest."""
    coverage = ip.ink_stroke(digit, longest, rng)
    ys, xs = np.nonzero(coverage > 0.5)
    gy, gx = np.mgrid[0 : coverage.shape[0], 0 : coverage.shape[1]].astype(np.float32)
    angles = np.linspace(0, np.pi, 12, endpoint=False)
    for cut in range(int(rng.integers(1, 4))):
        gap_width = rng.uniform(1.0, 4.0)
        high = np.flatnonzero(ys < ys.min() + 0.4 * (ys.max() - ys.min()))
        candidates = high if cut == 0 and rng.random() < 0.5 else np.arange(len(ys))
        for _ in range(20):
            pick = int(rng.choice(candidates))
            # Across the stroke is where it is shortest; the gap spans it from edge to edge.
            runs = [_runs(coverage, int(ys[pick]), int(xs[pick]), angle) for angle in angles]
            best = int(np.argmin([forward + backward for forward, backward in runs]))
            angle, (forward, backward) = float(angles[best]), runs[best]
            # Not at the tip of a stroke, where a cut would only shorten it: ink on both sides.
            ahead, behind = _runs(coverage, int(ys[pick]), int(xs[pick]), angle + np.pi / 2)
            if min(ahead, behind) > gap_width + 3:
                break
        cy = ys[pick] + (forward - backward) / 2 * np.sin(angle)
        cx = xs[pick] + (forward - backward) / 2 * np.cos(angle)
        reach = forward + backward + 2 * gap_width + 4
        across = -(gx - cx) * np.sin(angle) + (gy - cy) * np.cos(angle)
        along = (gx - cx) * np.cos(angle) + (gy - cy) * np.sin(angle)
        # Widened on the slant so that the pixels left either side never touch diagonally.
        half = gap_width / 2 * (abs(np.cos(angle)) + abs(np.sin(angle)))
        gap = np.clip(half + 0.5 - np.abs(across), 0.0, 1.0)
        gap *= np.abs(along) <= reach / 2
        coverage *= 1.0 - gap
    return coverage


def _sheet_on_table(
    height: int, width: int, rng: np.random.Generator
) -> tuple[ip.Page, dict[int, float]]:
    """A page that fills the frame except along one or two sides, where a darker table shows;
    returns the page and, per side (0 left, 1 right, 2 top, 3 bottom), the table's share."""
    wood = (1.0, rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.75))
    tint = wood if rng.random() < 0.5 else (1.0, 1.0, rng.uniform(0.95, 1.1))
    table = ip.blank_page(height, width, rng, level=rng.uniform(40, 140), tint=tint, texture=0.08)
    paper = ip.blank_page(height, width, rng, level=rng.uniform(190, 245), tint=ip.paper_tint(rng))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    sheet = np.ones((height, width), dtype=np.float32)
    shares: dict[int, float] = {}
    for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        share = rng.uniform(0.04, 0.2)
        tilt = math.tan(math.radians(rng.uniform(-5, 5)))
        if side == 0:
            distance = xs - (share * width + tilt * (ys - height / 2))
        elif side == 1:
            distance = (width * (1 - share) + tilt * (ys - height / 2)) - xs
        elif side == 2:
            distance = ys - (share * height + tilt * (xs - width / 2))
        else:
            distance = (height * (1 - share) + tilt * (xs - width / 2)) - ys
        sheet *= np.clip(distance / 1.5 + 0.5, 0.0, 1.0)
        shares[int(side)] = share
    page: ip.Page = table + (paper - table) * sheet[..., None]
    return page, shares


def phone_photo_image(
    digit: np.ndarray,
    rng: np.random.Generator,
    *,
    stroke: StrokeMaker = ip.ink_stroke,
    area: tuple[float, float] = PHOTO_DIGIT_AREA,
) -> tuple[Image.Image, Box]:
    """A 12-megapixel photo of the digit on a sheet of paper, before JPEG encoding; the square
    of the digit's longer side covers `area` of the frame."""
    width, height = PHOTO_SIZE
    small_h, small_w = height // PHOTO_REDUCTION, width // PHOTO_REDUCTION
    page, shares = _sheet_on_table(small_h, small_w, rng)
    light = ip.light_gradient(small_h, small_w, rng, low=rng.uniform(0.6, 0.9))
    spot = ip.vignette(small_h, small_w, rng, strength=rng.uniform(0.1, 0.3))
    ip.darken(page, 1.0 - (1.0 - light) * (1.0 - spot))
    photo = ip.to_image(page).resize(PHOTO_SIZE, Image.Resampling.BICUBIC)

    longest = math.sqrt(rng.uniform(*area) * width * height)
    coverage = stroke(digit, longest, rng)
    # Keep clear of the frame and of the table, allowing for the sheet's edge being tilted.
    slack = 0.06 * height
    x0 = (shares.get(0, 0.0) * width) + slack
    x1 = max(x0, width * (1 - shares.get(1, 0.0)) - slack - coverage.shape[1])
    y0 = (shares.get(2, 0.0) * height) + slack
    y1 = max(y0, height * (1 - shares.get(3, 0.0)) - slack - coverage.shape[0])
    top, left = int(rng.uniform(y0, y1)), int(rng.uniform(x0, x1))
    corner = (left, top, left + coverage.shape[1], top + coverage.shape[0])
    region = np.asarray(photo.crop(corner), dtype=np.float32)
    ip.apply_ink(region, coverage, 0, 0, dark_ink(rng))
    softened = ip.to_image(region).filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.0)))
    photo.paste(softened, corner[:2])

    # Sensor noise, cheaply: two uniform draws at half size (a triangular spread of about
    # `sd`), upscaled and added in Pillow rather than 36 million gaussian draws in numpy.
    sd = rng.uniform(2, 5)
    spread = max(2, round(math.sqrt(6 * sd * sd + 1)))
    half = (height // 2, width // 2, 3)
    grains = rng.integers(0, spread, half, dtype=np.uint8) + rng.integers(
        0, spread, half, dtype=np.uint8
    )
    grains += np.uint8(128 - (spread - 1))
    noise = Image.fromarray(grains, mode="RGB").resize(PHOTO_SIZE, Image.Resampling.BILINEAR)
    photo = ImageChops.add(photo, noise, scale=1.0, offset=-128)
    return photo, ink_box(coverage, top, left)


NOTE_PHOTO_SIZE = (1000, 750)
NOTE_SHARE = (0.15, 0.45)


def note_on_desk_image(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of a small sheet or sticky note on a dark desk: the note covers 15-45% of the
    frame, so most of the picture is darker than the ink's paper."""
    width, height = NOTE_PHOTO_SIZE
    wood = (1.0, rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.75))
    desk = ip.blank_page(height, width, rng, level=rng.uniform(30, 110), tint=wood, texture=0.1)
    paper = ip.blank_page(height, width, rng, level=rng.uniform(190, 245), tint=ip.paper_tint(rng))
    area = rng.uniform(*NOTE_SHARE) * width * height
    aspect = rng.uniform(0.8, 1.3)
    note_h = int(min(height - 20, math.sqrt(area / aspect)))
    note_w = int(min(width - 20, area / note_h))
    top = int(rng.integers(10, max(11, height - note_h - 10)))
    left = int(rng.integers(10, max(11, width - note_w - 10)))
    sheet = np.zeros((height, width), dtype=np.uint8)
    sheet[top : top + note_h, left : left + note_w] = 255
    soft = Image.fromarray(sheet).filter(ImageFilter.GaussianBlur(1.0))
    page: ip.Page = desk + (paper - desk) * (np.asarray(soft, dtype=np.float32) / 255.0)[..., None]
    ip.darken(page, ip.light_gradient(height, width, rng, low=rng.uniform(0.7, 0.95)))
    stroke = ip.ink_stroke(digit, rng.uniform(0.5, 0.75) * min(note_h, note_w), rng)
    margin_y, margin_x = 0.1 * note_h, 0.1 * note_w
    y = top + int(rng.uniform(margin_y, max(margin_y + 1, note_h - stroke.shape[0] - margin_y)))
    x = left + int(rng.uniform(margin_x, max(margin_x + 1, note_w - stroke.shape[1] - margin_x)))
    ip.apply_ink(page, stroke, y, x, dark_ink(rng))
    ip.add_noise(page, rng.uniform(2, 4), rng)
    return ip.to_image(page)
