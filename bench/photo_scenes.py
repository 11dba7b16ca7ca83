"""Scenes of the upload corpus that put things around the digit or change its stroke: a sheet or
a coloured note with the table showing round it, a screen in its bezel, a scan with the page's
shadow, a vignette, a sheet shot at an angle, a whiteboard, a hairline pen on a 12-megapixel
photo, a fat marker, a dim and noisy photo, and printed digits (from `bench.ink_and_paper`)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bench import ink_and_paper as ip
from bench.paper_scenes import StrokeMaker, dark_ink

FRAMED_SIZE = (1024, 768)
"""Framed photos are this size (width, height): a phone photo as a messaging app sends it."""
NOTE_COLOURS = (
    (250, 235, 120),
    (250, 180, 200),
    (170, 230, 160),
    (160, 210, 245),
    (250, 190, 110),
    (235, 235, 235),
)
"""Sticky notes and paper: yellow, pink, green, blue, orange, white."""
CONSTRUCTION_COLOURS = (
    (200, 60, 55),
    (60, 110, 190),
    (70, 150, 80),
    (235, 200, 60),
    (230, 130, 60),
    (150, 90, 170),
    (120, 190, 200),
    (240, 170, 190),
)
"""Coloured construction paper: red, blue, green, yellow, orange, purple, teal, pink."""
TYPEFACE_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype"))


def _surface(height: int, width: int, rng: np.random.Generator) -> ip.Page:
    """A table or desk: wood, dark laminate, or light grey, with its grain."""
    kind = rng.integers(3)
    if kind == 0:
        tint, level = (1.0, rng.uniform(0.7, 0.85), rng.uniform(0.5, 0.7)), rng.uniform(60, 160)
    elif kind == 1:
        tint, level = (1.0, 1.0, rng.uniform(0.95, 1.1)), rng.uniform(20, 70)
    else:
        tint, level = (1.0, 1.0, 1.0), rng.uniform(110, 170)
    return ip.blank_page(
        height, width, rng, level=level, tint=tint, texture=rng.uniform(0.05, 0.15)
    )


def _sheet_mask(
    height: int, width: int, rng: np.random.Generator, share: tuple[float, float]
) -> tuple[np.ndarray, tuple[float, float, float, float, float]]:
    """0..1 cover of a rotated rectangle covering `share` of the frame, and its geometry
    (centre y, x, half-height, half-width, angle in radians)."""
    area = rng.uniform(*share) * width * height
    aspect = rng.uniform(0.7, 1.4)
    half_h = min(0.5 * math.sqrt(area / aspect), 0.49 * height)
    half_w = min(0.5 * area / (2 * half_h), 0.49 * width)
    angle = math.radians(rng.uniform(-8, 8))
    cy = height / 2 + rng.uniform(-0.5, 0.5) * (height / 2 - half_h)
    cx = width / 2 + rng.uniform(-0.5, 0.5) * (width / 2 - half_w)
    corners = []
    for sy, sx in ((-1, -1), (-1, 1), (1, 1), (1, -1)):
        y, x = sy * half_h, sx * half_w
        corners.append(
            (
                cx + x * math.cos(angle) - y * math.sin(angle),
                cy + x * math.sin(angle) + y * math.cos(angle),
            )
        )
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon(corners, fill=255)
    cover = np.asarray(mask.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32) / 255.0
    return cover, (cy, cx, half_h, half_w, angle)


def _ink_inside(
    page: ip.Page,
    digit: np.ndarray,
    rng: np.random.Generator,
    geometry: tuple[float, float, float, float, float],
    colour: tuple[float, float, float],
    weight: tuple[float, float] = (0.3, 0.7),
    stroke_maker: StrokeMaker | None = None,
) -> None:
    """Writes the digit (or what `stroke_maker` makes of it) well inside the rectangle
    `geometry`, turned with it."""
    cy, cx, half_h, half_w, angle = geometry
    longest = rng.uniform(0.35, 0.7) * min(half_h, half_w) * 2
    if stroke_maker is None:
        stroke = ip.ink_stroke(digit, longest, rng, weight=weight)
    else:
        stroke = stroke_maker(digit, longest, rng)
    turned = Image.fromarray(stroke, mode="F").rotate(
        -math.degrees(angle), Image.Resampling.BICUBIC, expand=True
    )
    stroke = np.clip(np.asarray(turned, dtype=np.float32), 0.0, 1.0)
    room_y, room_x = (
        max(0.0, half_h * 0.5 - stroke.shape[0] / 4),
        max(0.0, half_w * 0.5 - stroke.shape[1] / 4),
    )
    top = int(cy + rng.uniform(-room_y, room_y) - stroke.shape[0] / 2)
    left = int(cx + rng.uniform(-room_x, room_x) - stroke.shape[1] / 2)
    top = int(np.clip(top, 0, page.shape[0] - stroke.shape[0]))
    left = int(np.clip(left, 0, page.shape[1] - stroke.shape[1]))
    ip.apply_ink(page, stroke, top, left, colour)


def framed_sheet(
    digit: np.ndarray,
    rng: np.random.Generator,
    *,
    share: tuple[float, float] = (0.55, 0.97),
    paper: tuple[float, float, float] | None = None,
    stroke_maker: StrokeMaker | None = None,
) -> Image.Image:
    """A sheet or note photographed on a table that shows all round it (the sheet covers
    `share` of the frame), tilted, under uneven light; `paper` is its colour (default white
    or cream)."""
    width, height = FRAMED_SIZE
    table = _surface(height, width, rng)
    level = rng.uniform(190, 250)
    tint = ip.paper_tint(rng) if paper is None else tuple(c / max(paper) for c in paper)
    sheet = ip.blank_page(
        height, width, rng, level=level if paper is None else max(paper), tint=tint
    )
    cover, geometry = _sheet_mask(height, width, rng, share)
    _ink_inside(sheet, digit, rng, geometry, dark_ink(rng), stroke_maker=stroke_maker)
    page: ip.Page = table + (sheet - table) * cover[..., None]
    ip.darken(page, ip.light_gradient(height, width, rng, low=rng.uniform(0.65, 0.95)))
    ip.add_noise(page, rng.uniform(2, 5), rng)
    return ip.to_image(page)


def screen_photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of a screen showing a drawing: the dark bezel all round, the screen bright with
    dark strokes (or dark with light ones), faint scan lines and a reflection."""
    width, height = FRAMED_SIZE
    bezel_level = rng.uniform(8, 45)
    page = ip.blank_page(height, width, rng, level=bezel_level, texture=0.03)
    cover, geometry = _sheet_mask(height, width, rng, (0.45, 0.8))
    dark_mode = rng.random() < 0.3
    level = rng.uniform(50, 80) if dark_mode else rng.uniform(200, 250)
    screen = ip.blank_page(
        height,
        width,
        rng,
        level=level,
        tint=(rng.uniform(0.9, 1.0), 1.0, rng.uniform(1.0, 1.1)),
        texture=0.01,
    )
    if dark_mode:
        # Light strokes: ink that brightens, written as its complement and flipped back.
        flipped = 255.0 - screen
        _ink_inside(flipped, digit, rng, geometry, (30.0, 30.0, 30.0))
        screen = 255.0 - flipped
    else:
        _ink_inside(screen, digit, rng, geometry, (20.0, 20.0, 30.0))
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    screen *= 1.0 + 0.04 * np.sin(2 * np.pi * rows / rng.uniform(3, 7))
    page = page + (screen - page) * cover[..., None]
    glare = ip.vignette(height, width, rng, strength=1.0)
    page += rng.uniform(10, 40) * (1.0 - glare)[..., None]
    image = ip.to_image(page).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return image


def scan_with_shadow(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A flatbed scan: the page fills the frame, but a dark shadow runs along one or two of
    its edges where the page stood off the glass, and the lid's grey shows in a corner."""
    width, height = FRAMED_SIZE
    page = ip.blank_page(height, width, rng, level=rng.uniform(225, 252), tint=ip.paper_tint(rng))
    _ink_inside(
        page, digit, rng, (height / 2, width / 2, height * 0.4, width * 0.4, 0.0), dark_ink(rng)
    )
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    darkening = np.zeros((height, width), np.float32)
    for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        distance = (xs, width - 1 - xs, ys, height - 1 - ys)[int(side)]
        reach = rng.uniform(0.02, 0.09) * min(width, height)
        darkening = np.maximum(darkening, rng.uniform(0.6, 0.95) * np.exp(-distance / reach))
    ip.darken(page, darkening)
    ip.add_noise(page, rng.uniform(1, 3), rng)
    return ip.to_image(page)


def vignetted_photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A sheet filling the frame under a strong vignette: the corners fall to a third of the
    light or less."""
    width, height = FRAMED_SIZE
    page = ip.blank_page(height, width, rng, level=rng.uniform(200, 250), tint=ip.paper_tint(rng))
    _ink_inside(
        page, digit, rng, (height / 2, width / 2, height * 0.35, width * 0.3, 0.0), dark_ink(rng)
    )
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.sqrt(
        ((ys - height / 2) / (height / 2)) ** 2 + ((xs - width / 2) / (width / 2)) ** 2
    )
    strength = rng.uniform(0.65, 0.9)
    ip.darken(page, strength * np.clip((radius - rng.uniform(0.5, 0.8)) / 0.6, 0.0, 1.0) ** 1.5)
    ip.add_noise(page, rng.uniform(2, 5), rng)
    return ip.to_image(page)


def at_an_angle(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A sheet photographed at an angle: each corner pulled in by up to a fifth of the frame,
    the table showing in the wedges."""
    upright = framed_sheet(digit, rng, share=(0.8, 0.95))
    width, height = upright.size
    pull = lambda: rng.uniform(0.0, 0.2)  # noqa: E731
    corners = [
        (pull() * width, pull() * height),
        ((1 - pull()) * width, pull() * height),
        ((1 - pull()) * width, (1 - pull()) * height),
        (pull() * width, (1 - pull()) * height),
    ]
    frame = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(frame, np.float32(corners))
    pixels = np.asarray(upright)
    surround = tuple(int(v) for v in pixels[0, 0])
    warped = cv2.warpPerspective(
        pixels,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=surround,
    )
    return Image.fromarray(warped)


def whiteboard(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A marker digit on a whiteboard: glossy white with a glare, ghosts of erased writing, the
    board's metal frame along an edge of the photo."""
    width, height = FRAMED_SIZE
    page = ip.blank_page(
        height,
        width,
        rng,
        level=rng.uniform(205, 245),
        tint=(rng.uniform(0.95, 1.0), 1.0, rng.uniform(1.0, 1.05)),
        texture=0.03,
    )
    ghosts = ip.smooth_field(height, width, int(rng.integers(8, 20)), rng)
    ip.darken(page, rng.uniform(0.02, 0.08) * np.clip(ghosts, 0, 1))
    colours = ((20, 20, 30), (20, 40, 150), (170, 30, 40), (20, 120, 60))
    colour = tuple(float(c) for c in colours[int(rng.integers(len(colours)))])
    _ink_inside(
        page,
        digit,
        rng,
        (height / 2, width / 2, height * 0.42, width * 0.35, 0.0),
        colour,
        weight=(0.2, 0.45),
    )  # type: ignore[arg-type]
    glare = ip.vignette(height, width, rng, strength=1.0)
    page += rng.uniform(15, 50) * np.clip(1.0 - 3 * glare, 0, 1)[..., None]
    if rng.random() < 0.7:
        band = int(rng.uniform(0.02, 0.06) * min(width, height))
        side = int(rng.integers(4))
        metal = rng.uniform(120, 190)
        if side == 0:
            page[:band] = metal
        elif side == 1:
            page[-band:] = metal
        elif side == 2:
            page[:, :band] = metal
        else:
            page[:, -band:] = metal
    ip.add_noise(page, rng.uniform(2, 5), rng)
    return ip.to_image(page)


def _thinned(binary: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning of a 0/1 mask: its strokes as lines one pixel wide."""
    image = np.pad(binary.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [
                np.roll(np.roll(image, -dy, 0), -dx, 1)
                for dy, dx in ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
            ]
            neighbours = sum(p)
            ring = p + p[:1]
            rises = sum(((ring[k] == 0) & (ring[k + 1] == 1)).astype(np.uint8) for k in range(8))
            if step == 0:
                spare = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                spare = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            gone = (image == 1) & (neighbours >= 2) & (neighbours <= 6) & (rises == 1) & spare
            if gone.any():
                image[gone] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def hairline_stroke(digit: np.ndarray, longest: float, rng: np.random.Generator) -> np.ndarray:
    """The digit as a fine pen draws it large: a line along the middle of MNIST's stroke, a
    sixtieth to a thirtieth of the digit's height wide (a 0.5-1 mm ballpoint on a 3 cm digit)."""
    small = ip.ink_stroke(digit, 96, rng)
    middle = _thinned(small > 0.5)
    factor = longest / 96
    pen = max(2, round(longest * rng.uniform(1 / 60, 1 / 30)))
    size = (round(middle.shape[0] * factor) + pen, round(middle.shape[1] * factor) + pen)
    line = np.zeros(size, np.uint8)
    ys, xs = np.nonzero(middle)
    at = {(int(y), int(x)) for y, x in zip(ys, xs, strict=True)}
    offset = pen / 2
    # Each pair of neighbouring middle-line pixels is a segment of the pen's path.
    for y, x in at:
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if (y + dy, x + dx) in at:
                start = (round(x * factor + offset), round(y * factor + offset))
                end = (round((x + dx) * factor + offset), round((y + dy) * factor + offset))
                cv2.line(line, start, end, 1, pen, lineType=cv2.LINE_8)
    return cv2.GaussianBlur(line.astype(np.float32), (3, 3), 0.7)


def marker_stroke(digit: np.ndarray, longest: float, rng: np.random.Generator) -> np.ndarray:
    """The digit in a fat felt marker: strokes a quarter to a third of the digit's height."""
    broad = ip.ink_stroke(digit, longest, rng, weight=(0.15, 0.3))
    radius = max(1, round(longest * rng.uniform(0.04, 0.07)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    fat = cv2.dilate(np.pad(broad, radius + 2), kernel)
    return np.clip(fat, 0.0, 1.0)


def typefaces() -> list[Path]:
    """The TrueType files found on this machine (DejaVu's first); empty when there are none."""
    found: list[Path] = []
    for folder in TYPEFACE_DIRS:
        found.extend(sorted(folder.glob("*.ttf")) if folder.is_dir() else [])
    return list(dict.fromkeys(found))


def typeface(rng: np.random.Generator, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A random typeface of this machine at `size` pixels, or Pillow's own without any."""
    files = [f for f in typefaces() if "MathTeX" not in f.name]
    if not files:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(files[int(rng.integers(len(files)))]), size)


def printed_characters(text: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """`text` printed in a random typeface, white on black, cropped to its ink."""
    font = typeface(rng, size)
    canvas = Image.new("L", (size * (len(text) + 2), size * 3), 0)
    ImageDraw.Draw(canvas).text((size, size), text, fill=255, font=font)
    pixels = np.asarray(canvas, dtype=np.float32) / 255.0
    return ip.trim(pixels)
