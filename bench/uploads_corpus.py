"""A corpus of realistic digit uploads: MNIST **test** digits written on paper and
photographed or scanned, one condition at a time.

Each condition renders a 28x28 MNIST digit (white ink on black) as the file a person would
upload, varying its parameters at random within realistic ranges:

* `canvas`: black strokes on a transparent 280x280 web canvas (PNG), the baseline;
* `paper_png`, `paper_jpeg`: dark ink on slightly grey paper (200-250) with sensor noise (sd
  2-6), saved as PNG, or as JPEG at quality 60-95;
* `uneven_light`: a strong linear gradient and/or vignette across the page (paper 120-250);
* `shadow`: a hand's or phone's shadow, hard- or soft-edged, darkening 30-60% of the light over
  a region that may cross the digit;
* `blue_pen`, `red_pen`: ballpoint colours on white or cream paper (JPEG);
* `pencil`: grey graphite 25-50% darker than the paper, grainy, often thin;
* `ruled_paper`: light blue lines that the digit spans 1-3 gaps of, sometimes a red margin;
* `squared_paper`: a light blue or grey grid with squares a third to half the digit's height;
* `phone_photo`: a 4000x3000 JPEG whose digit (its longer side squared) covers 2-5% of the
  frame, on a sheet that shows a darker table along one or two sides, under uneven light;
* `note_on_desk`: a 1000x750 JPEG of a small sheet or sticky note covering 15-45% of the frame
  on a dark desk (wood 30-110), so most of the picture is darker than the paper;
* `blur`: out of focus (gaussian sigma 1-3 px) and/or camera shake;
* `exif_rotated`: a photo stored sideways or upside down with an EXIF Orientation of 6, 8 or 3;
* `broken_strokes`: strokes cut by 1-4 px gaps into separate pieces (a 5's top bar apart from
  its body, a 4's two strokes, an open loop): a preprocessing must keep every piece.

`corpus(condition, digits, labels, count, seed)` picks `count` test digits at random (never by
whether a model reads them) and renders each with its own generator seeded from (seed,
condition, test index), so conditions are independent and any image can be re-made alone.

This generator is a measuring instrument, not the target: the held-out checks are produced
differently. Build the preprocessing for the conditions, not for this generator.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Protocol

import numpy as np
from PIL import Image

from bench import ink_and_paper as ip
from bench import photo_scenes as ps
from bench.paper_scenes import (
    cut_gaps,
    dark_ink,
    note_on_desk_image,
    paper_scene,
    pencil_stroke,
    phone_photo_image,
    save,
    shadow_field,
)

Drawer = Callable[[np.ndarray, np.random.Generator], bytes]


class Renderer(Protocol):
    """Makes one upload from a digit's pixels, its generator and its label (which only a
    printed digit needs)."""

    def __call__(self, digit: np.ndarray, rng: np.random.Generator, label: int = -1) -> bytes: ...


def canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    side = 280
    stroke = ip.ink_stroke(digit, rng.uniform(120, 240), rng, weight=(0.3, 0.55), crispness=0.04)
    stroke = ip.trim(stroke)[: side - 8, : side - 8]
    top, left = (offset + 4 for offset in ip.place((side - 8, side - 8), stroke.shape, rng))
    alpha = np.zeros((side, side), dtype=np.float32)
    alpha[top : top + stroke.shape[0], left : left + stroke.shape[1]] = stroke
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(alpha[..., None] > 0, int(rng.integers(0, 40)), 0)
    rgba[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return ip.encode(Image.fromarray(rgba, mode="RGBA"), "PNG")


def paper_png(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, _ = paper_scene(digit, rng)
    return save(page, rng, jpeg=False)


def paper_jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, _ = paper_scene(digit, rng)
    return save(page, rng, jpeg=True)


def uneven_light(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    level = rng.uniform(235, 252)
    page, _ = paper_scene(digit, rng, level=(level, level))
    height, width = page.shape[:2]
    kind = rng.integers(3)
    darkening: np.ndarray = np.zeros((height, width), dtype=np.float32)
    if kind in (0, 2):
        darkening = ip.light_gradient(height, width, rng, low=rng.uniform(0.5, 0.72))
    if kind in (1, 2):
        spot = ip.vignette(height, width, rng, strength=rng.uniform(0.25, 0.5))
        darkening = 1.0 - (1.0 - darkening) * (1.0 - spot)
    ip.darken(page, np.minimum(darkening, 1.0 - 120.0 / level))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def shadow(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, box = paper_scene(digit, rng)
    ip.darken(page, rng.uniform(0.3, 0.6) * shadow_field(page.shape[:2], box, rng))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def _coloured_pen(
    digit: np.ndarray, rng: np.random.Generator, colour: tuple[float, float, float]
) -> bytes:
    page, _ = paper_scene(digit, rng, level=(220, 252), ink=colour)
    return save(page, rng, jpeg=True, quality=(70, 95), allow_grey=False)


def blue_pen(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    colour = (rng.uniform(10, 50), rng.uniform(25, 70), rng.uniform(120, 180))
    return _coloured_pen(digit, rng, colour)


def red_pen(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    colour = (rng.uniform(160, 210), rng.uniform(20, 50), rng.uniform(30, 60))
    return _coloured_pen(digit, rng, colour)


def pencil(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    grey = 255.0 * (1.0 - rng.uniform(0.25, 0.5))
    page, _ = paper_scene(
        digit, rng, level=(210, 245), ink=(grey, grey, grey * 1.02), stroke=pencil_stroke
    )
    return save(page, rng, jpeg=bool(rng.random() < 0.5))


def ruled_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    longest = rng.uniform(80, 260)
    page, (_, left, _, _) = paper_scene(digit, rng, longest=(longest, longest), level=(225, 252))
    height, width = page.shape[:2]
    blue = (rng.uniform(140, 190), rng.uniform(180, 215), rng.uniform(220, 245))
    lines = ip.ruling(
        height,
        width,
        rng,
        spacing=longest / rng.uniform(1.0, 3.0),
        thickness=rng.uniform(1.0, 2.2),
        vertical=False,
    )
    ip.apply_ink(page, lines, 0, 0, blue)
    if rng.random() < 0.35 and left >= 6:
        margin = np.zeros((height, width), dtype=np.float32)
        x = rng.uniform(0.2, 0.8) * left
        margin += ip.line_coverage(np.arange(width, dtype=np.float32) - x, 1e9, rng.uniform(1, 2.5))
        red = (rng.uniform(210, 240), rng.uniform(80, 130), rng.uniform(90, 140))
        ip.apply_ink(page, margin, 0, 0, red)
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def squared_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    longest = rng.uniform(80, 260)
    page, _ = paper_scene(digit, rng, longest=(longest, longest), level=(225, 252))
    height, width = page.shape[:2]
    spacing = longest * rng.uniform(1 / 3, 1 / 2)
    thickness = rng.uniform(1.0, 2.0)
    if rng.random() < 0.6:
        colour = (rng.uniform(150, 195), rng.uniform(185, 215), rng.uniform(220, 245))
    else:
        colour = (rng.uniform(165, 205),) * 3
    across = ip.ruling(height, width, rng, spacing=spacing, thickness=thickness, vertical=False)
    down = ip.ruling(height, width, rng, spacing=spacing, thickness=thickness, vertical=True)
    ip.apply_ink(page, 1.0 - (1.0 - across) * (1.0 - down), 0, 0, colour)
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def phone_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    image, _ = phone_photo_image(digit, rng)
    return ip.encode(image, "JPEG", quality=int(rng.integers(80, 93)))


def note_on_desk(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return ip.encode(note_on_desk_image(digit, rng), "JPEG", quality=int(rng.integers(80, 93)))


def blur(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, _ = paper_scene(digit, rng, longest=(80, 260))
    kind = rng.integers(3)
    if kind in (0, 2):
        page = ip.gaussian_blur(page, rng.uniform(1.0, 3.0))
    if kind in (1, 2):
        page = ip.motion_blur(page, int(rng.integers(3, 10)), rng.uniform(0, np.pi))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


ORIENTATION_TAG = 0x0112
STORED_FOR_ORIENTATION = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # shown after turning 90 degrees clockwise
    8: Image.Transpose.ROTATE_270,
}


def upright_photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The photo `exif_rotated` stores turned: paper under a mild gradient, with noise."""
    page, _ = paper_scene(digit, rng)
    height, width = page.shape[:2]
    ip.darken(page, ip.light_gradient(height, width, rng, low=rng.uniform(0.8, 0.95)))
    ip.add_noise(page, rng.uniform(2, 5), rng)
    return ip.to_image(page)


def exif_rotated(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    upright = upright_photo(digit, rng)
    orientation = int(rng.choice(list(STORED_FOR_ORIENTATION)))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    stored = upright.transpose(STORED_FOR_ORIENTATION[orientation])
    return ip.encode(stored, "JPEG", quality=int(rng.integers(75, 95)), exif=exif.tobytes())


def broken_strokes(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, _ = paper_scene(digit, rng, longest=(80, 220), stroke=cut_gaps)
    return save(page, rng, jpeg=bool(rng.random() < 0.5))


def _jpeg(image: Image.Image, rng: np.random.Generator, low: int = 75) -> bytes:
    return ip.encode(image, "JPEG", quality=int(rng.integers(low, 93)))


def sheet_on_table(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _jpeg(ps.framed_sheet(digit, rng), rng)


def coloured_note(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    colour = ps.NOTE_COLOURS[int(rng.integers(len(ps.NOTE_COLOURS)))]
    paper = tuple(c * rng.uniform(0.9, 1.0) for c in colour)
    return _jpeg(ps.framed_sheet(digit, rng, share=(0.2, 0.7), paper=paper), rng)


def coloured_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    colour = ps.CONSTRUCTION_COLOURS[int(rng.integers(len(ps.CONSTRUCTION_COLOURS)))]
    tint = tuple(c / max(colour) for c in colour)
    page, _ = paper_scene(digit, rng, level=(0.85 * max(colour), max(colour)))
    page *= np.asarray(tint, np.float32)[None, None, :]
    return save(page, rng, jpeg=True, allow_grey=False)


def screen_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _jpeg(ps.screen_photo(digit, rng), rng)


def scan_shadow(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    image = ps.scan_with_shadow(digit, rng)
    return ip.encode(image, "PNG") if rng.random() < 0.4 else _jpeg(image, rng)


def vignette(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _jpeg(ps.vignetted_photo(digit, rng), rng)


def perspective(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _jpeg(ps.at_an_angle(digit, rng), rng)


def whiteboard(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _jpeg(ps.whiteboard(digit, rng), rng)


def thin_pen_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    image, _ = phone_photo_image(digit, rng, stroke=ps.hairline_stroke, area=(0.02, 0.1))
    return ip.encode(image, "JPEG", quality=int(rng.integers(80, 93)))


def fat_marker(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, _ = paper_scene(digit, rng, longest=(60, 260), stroke=ps.marker_stroke)
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def dim_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page, _ = paper_scene(digit, rng, level=(35, 95), longest=(80, 260))
    height, width = page.shape[:2]
    ip.darken(page, ip.light_gradient(height, width, rng, low=rng.uniform(0.6, 0.95)))
    return save(page, rng, jpeg=True, quality=(55, 85), noise=(5.0, 14.0))


def printed(digit: np.ndarray, rng: np.random.Generator, label: int) -> bytes:
    """A printed digit (the label, not the handwritten one) on a label or a printed page."""
    size = int(rng.integers(24, 160))
    glyph = ps.printed_characters(str(label), rng, size)
    turned = Image.fromarray(glyph, mode="F").rotate(
        rng.uniform(-6, 6), Image.Resampling.BICUBIC, expand=True
    )
    glyph = np.clip(np.asarray(turned, dtype=np.float32), 0.0, 1.0)
    margin = (max(glyph.shape) * rng.uniform(0.2, 1.0, size=4)).astype(int) + 2
    height, width = glyph.shape[0] + margin[0] + margin[1], glyph.shape[1] + margin[2] + margin[3]
    page = ip.blank_page(height, width, rng, level=rng.uniform(200, 250), tint=ip.paper_tint(rng))
    ip.apply_ink(page, glyph, int(margin[0]), int(margin[2]), dark_ink(rng))
    if rng.random() < 0.5:
        page = ip.gaussian_blur(page, rng.uniform(0.4, 1.2))
    return save(page, rng, jpeg=bool(rng.random() < 0.6))


def _unlabelled(draw: Drawer) -> Renderer:
    def renderer(digit: np.ndarray, rng: np.random.Generator, label: int = -1) -> bytes:
        return draw(digit, rng)

    return renderer


def printed_label(digit: np.ndarray, rng: np.random.Generator, label: int = -1) -> bytes:
    if not 0 <= label <= 9:
        raise ValueError("a printed digit is made from its label: pass label=0..9")
    return printed(digit, rng, label)


_DRAWERS: dict[str, Drawer] = {
    "canvas": canvas,
    "paper_png": paper_png,
    "paper_jpeg": paper_jpeg,
    "uneven_light": uneven_light,
    "shadow": shadow,
    "blue_pen": blue_pen,
    "red_pen": red_pen,
    "pencil": pencil,
    "ruled_paper": ruled_paper,
    "squared_paper": squared_paper,
    "phone_photo": phone_photo,
    "note_on_desk": note_on_desk,
    "blur": blur,
    "exif_rotated": exif_rotated,
    "broken_strokes": broken_strokes,
    "sheet_on_table": sheet_on_table,
    "coloured_note": coloured_note,
    "coloured_paper": coloured_paper,
    "screen_photo": screen_photo,
    "scan_shadow": scan_shadow,
    "vignette": vignette,
    "perspective": perspective,
    "whiteboard": whiteboard,
    "thin_pen_photo": thin_pen_photo,
    "fat_marker": fat_marker,
    "dim_photo": dim_photo,
}
CONDITIONS: dict[str, Renderer] = {
    **{name: _unlabelled(draw) for name, draw in _DRAWERS.items()},
    "printed": printed_label,
}
"""Condition name -> renderer of one upload (the encoded file's bytes)."""
LARGE_PHOTOS = frozenset({"phone_photo", "thin_pen_photo"})
"""12-megapixel photos: about half a second each to render."""
FRAMED_PHOTOS = frozenset(
    {
        "sheet_on_table",
        "coloured_note",
        "screen_photo",
        "scan_shadow",
        "vignette",
        "perspective",
        "whiteboard",
    }
)
"""Whole photo scenes (`bench.photo_scenes`, 1024x768): a few tenths of a second each."""


def _condition_key(condition: str) -> int:
    if condition not in CONDITIONS:
        raise KeyError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    return zlib.crc32(condition.encode())


def sample(condition: str, population: int, count: int, seed: int) -> np.ndarray:
    """The test indices `corpus` renders for `condition`, in order: a seeded random choice."""
    rng = np.random.default_rng([seed, _condition_key(condition)])
    return rng.choice(population, size=count, replace=count > population)


def render(condition: str, digit: np.ndarray, index: int, seed: int, label: int = -1) -> bytes:
    """The upload `corpus` makes of test digit `index` (its pixels `digit`, its `label`)
    under `condition`."""
    rng = np.random.default_rng([seed, _condition_key(condition), index])
    return CONDITIONS[condition](digit, rng, label)


def corpus(
    condition: str,
    digits: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    *,
    pool: Executor | None = None,
) -> Iterator[tuple[bytes, int]]:
    """Yields (file bytes, true label) for `count` test digits rendered under `condition`; the
    i-th item is test digit `sample(condition, len(digits), count, seed)[i]`.

    A process `pool` renders several at once, in the same order and to the same bytes: each
    image has its own generator, so who renders it does not matter. A 12-megapixel phone photo
    takes about half a second, so this is what makes a hundred of them affordable."""
    indices = [int(index) for index in sample(condition, len(digits), count, seed)]
    if pool is None:
        files: Iterator[bytes] = (
            render(condition, digits[i], i, seed, int(labels[i])) for i in indices
        )
    else:
        files = pool.map(
            render,
            [condition] * count,
            [digits[i] for i in indices],
            indices,
            [seed] * count,
            [int(labels[i]) for i in indices],
            chunksize=max(1, count // 32),
        )
    for index, data in zip(indices, files, strict=True):
        yield data, int(labels[index])


def mnist_test_digits() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's test images and labels, from the data folder the settings name (DATA_DIR)."""
    mnist = _mnist()
    return mnist.x_test, mnist.y_test


def mnist_validation_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digit recipe's validation split: the last `validation_split` of MNIST's training
    images, which training holds out for checkpointing. Choices are made on these; the test
    set gives final figures only."""
    from training.hyperparameters import DigitHyperparameters
    from training.train import validation_rows

    mnist = _mnist()
    held = validation_rows(len(mnist.x_train), DigitHyperparameters().validation_split)
    return mnist.x_train[-held:], mnist.y_train[-held:]


def _mnist():  # type: ignore[no-untyped-def]
    from training import data
    from training.settings import TrainingSettings

    settings = TrainingSettings()
    path = data.locate(
        data.MNIST_FILE, settings.data_dir, settings.cache_dir, download=settings.download_data
    )
    return data.load_mnist(path)
