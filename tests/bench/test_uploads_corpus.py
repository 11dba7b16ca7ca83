"""The realistic-upload generator (`bench.uploads_corpus`): every condition makes a file Pillow
reads, with the properties the condition promises, and the same seed makes the same corpus.

Digits here are drawn on the spot in MNIST's format, so these tests need no data set; how the
service reads the corpus is tests/service/test_real_uploads.py."""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from bench import ink_and_paper, not_digits
from bench.paper_scenes import PHOTO_SIZE, cut_gaps, phone_photo_image
from bench.photo_scenes import FRAMED_SIZE, hairline_stroke, marker_stroke
from bench.upload_scoring import SPAWN
from bench.uploads_corpus import (
    CONDITIONS,
    FRAMED_PHOTOS,
    LARGE_PHOTOS,
    corpus,
    render,
    sample,
    upright_photo,
)

JPEG_CONDITIONS = {
    "paper_jpeg",
    "blue_pen",
    "red_pen",
    "phone_photo",
    "exif_rotated",
    "sheet_on_table",
    "coloured_note",
    "coloured_paper",
    "screen_photo",
    "vignette",
    "perspective",
    "whiteboard",
    "thin_pen_photo",
    "dim_photo",
}
PNG_CONDITIONS = {"canvas", "paper_png"}


def _mnist_like(draw_strokes) -> np.ndarray:  # type: ignore[no-untyped-def]
    """White strokes on black in a 20x20 box of a 28x28 frame, anti-aliased like MNIST."""
    image = Image.new("L", (112, 112), 0)
    draw_strokes(ImageDraw.Draw(image))
    small = image.filter(ImageFilter.GaussianBlur(2)).resize((28, 28), Image.Resampling.BOX)
    return np.asarray(ImageOps.autocontrast(small), dtype=np.uint8)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    seven = _mnist_like(lambda d: d.line([(24, 20), (88, 20), (48, 96)], fill=255, width=12))
    zero = _mnist_like(lambda d: d.ellipse([(30, 16), (82, 96)], outline=255, width=12))
    four = _mnist_like(
        lambda d: (
            d.line([(60, 16), (24, 68), (88, 68)], fill=255, width=12),
            d.line([(70, 40), (70, 96)], fill=255, width=12),
        )
    )
    return np.stack([seven, zero, four]), np.array([7, 0, 4])


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("condition", [c for c in CONDITIONS if c not in LARGE_PHOTOS])
def test_every_condition_makes_a_readable_file_of_its_format(digits, condition: str) -> None:  # type: ignore[no-untyped-def]
    for data, label in corpus(condition, *digits, count=4, seed=1):
        image = _decode(data)
        assert label in (7, 0, 4)
        assert image.format in ("PNG", "JPEG")
        if condition in JPEG_CONDITIONS:
            assert image.format == "JPEG"
        if condition in PNG_CONDITIONS:
            assert image.format == "PNG"
        assert min(image.size) >= 40 and max(image.size) <= 1200


def test_the_same_seed_makes_the_same_corpus_and_another_seed_another(digits) -> None:  # type: ignore[no-untyped-def]
    for condition in ("paper_jpeg", "pencil", "broken_strokes", "canvas"):
        first = list(corpus(condition, *digits, count=3, seed=5))
        assert first == list(corpus(condition, *digits, count=3, seed=5))
        assert first != list(corpus(condition, *digits, count=3, seed=6))


def test_a_process_pool_renders_the_same_files_in_the_same_order(digits) -> None:  # type: ignore[no-untyped-def]
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        for condition in ("paper_jpeg", "broken_strokes"):
            alone = list(corpus(condition, *digits, count=7, seed=3))
            assert list(corpus(condition, *digits, count=7, seed=3, pool=pool)) == alone


def test_each_item_can_be_made_again_alone_and_conditions_draw_independently(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    indices = sample("shadow", len(images), 3, seed=2)
    items = list(corpus("shadow", images, labels, count=3, seed=2))
    for index, (data, label) in zip(indices, items, strict=True):
        assert label == labels[index]
        assert data == render("shadow", images[index], int(index), seed=2)
    # Each condition has its own generator: another condition's picks do not follow these.
    picks = {tuple(sample(c, 10_000, 20, seed=2)) for c in CONDITIONS}
    assert len(picks) == len(CONDITIONS)
    assert sorted(set(sample("blur", 10_000, 300, seed=0))) == sorted(
        sample("blur", 10_000, 300, 0)
    )


def test_a_canvas_is_a_transparent_280_pixel_png_with_dark_strokes(digits) -> None:  # type: ignore[no-untyped-def]
    for data, _ in corpus("canvas", *digits, count=3, seed=0):
        image = _decode(data)
        assert (image.size, image.mode) == ((280, 280), "RGBA")
        pixels = np.asarray(image)
        alpha = pixels[..., 3]
        assert alpha[0].max() == alpha[-1].max() == alpha[:, 0].max() == alpha[:, -1].max() == 0
        assert (alpha > 128).mean() > 0.03
        assert pixels[alpha > 128, :3].max() < 64


def test_paper_is_light_grey_with_mild_noise_and_dark_ink(digits) -> None:  # type: ignore[no-untyped-def]
    for data, _ in corpus("paper_png", *digits, count=6, seed=0):
        grey = np.asarray(_decode(data).convert("L"), dtype=np.float32)
        corner = grey[:8, :8]
        assert 185 <= np.median(corner) <= 255
        assert 1.0 <= corner.std() <= 8.0  # sensor noise of sd 2-6 (and faint texture)
        assert grey.min() < np.median(corner) - 100


def test_coloured_pens_write_in_their_colour(digits) -> None:  # type: ignore[no-untyped-def]
    for condition, channel in (("blue_pen", 2), ("red_pen", 0)):
        for data, _ in corpus(condition, *digits, count=3, seed=0):
            rgb = np.asarray(_decode(data).convert("RGB"), dtype=np.float32)
            darkness = 255 - rgb.mean(axis=2)
            ink = rgb[darkness > np.quantile(darkness, 0.99)]
            assert (
                ink[:, channel].mean()
                > ink[:, [c for c in range(3) if c != channel]].max(axis=1).mean() + 40
            ), condition


def test_pencil_is_low_contrast(digits) -> None:  # type: ignore[no-untyped-def]
    for data, _ in corpus("pencil", *digits, count=4, seed=0):
        grey = np.asarray(_decode(data).convert("L"), dtype=np.float32)
        paper = np.median(grey)
        darkest = np.quantile(grey, 0.002)
        assert 0.4 * paper <= darkest <= 0.85 * paper


def test_a_phone_photo_is_12_megapixels_with_a_digit_of_2_to_5_percent(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    for seed in range(3):
        rng = np.random.default_rng(seed)
        photo, (top, left, height, width) = phone_photo_image(images[seed], rng)
        assert photo.size == PHOTO_SIZE == (4000, 3000)
        assert 0.02 <= max(height, width) ** 2 / (4000 * 3000) <= 0.05
        assert min(top, left) > 0.05 * 3000
        assert top + height < 3000 * 0.95 and left + width < 4000 - 0.05 * 3000
        grey = np.asarray(photo.convert("L").reduce(10), dtype=np.float32)
        digit = grey[top // 10 : (top + height) // 10, left // 10 : (left + width) // 10]
        assert digit.min() < np.median(grey) - 60  # the ink is there
        # The sheet does not fill the frame: a darker table shows along at least one side.
        sides = (grey[:, :3], grey[:, -3:], grey[:3], grey[-3:])
        assert min(np.median(side) for side in sides) < np.median(grey) - 30
    data = CONDITIONS["phone_photo"](images[0], np.random.default_rng(0))
    decoded = _decode(data)
    assert (decoded.format, decoded.size) == ("JPEG", (4000, 3000))


def test_exif_rotated_photos_are_upright_only_once_the_orientation_is_honoured(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    seen = set()
    for seed in range(8):
        upright = np.asarray(upright_photo(images[0], np.random.default_rng(seed)).convert("L"))
        stored = _decode(CONDITIONS["exif_rotated"](images[0], np.random.default_rng(seed)))
        orientation = stored.getexif().get(0x0112)
        assert orientation in (3, 6, 8)
        seen.add(orientation)
        turned = np.asarray(ImageOps.exif_transpose(stored).convert("L"), dtype=np.float32)
        assert turned.shape == upright.shape
        assert np.abs(turned - upright).mean() < 4  # JPEG's loss only
        raw = np.asarray(stored.convert("L"), dtype=np.float32)
        assert raw.shape != upright.shape or np.abs(raw - upright).mean() > 10
    assert seen == {3, 6, 8}


def _pieces(mask: np.ndarray, *, diagonal: bool) -> int:
    """Connected parts of `mask` (8-connected with `diagonal`, else 4-connected)."""
    mask = mask.copy()
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy or dx)]
    if not diagonal:
        steps = [(dy, dx) for dy, dx in steps if not (dy and dx)]
    count = 0
    for start in zip(*np.nonzero(mask), strict=True):
        if not mask[start]:
            continue
        count += 1
        stack = [start]
        mask[start] = False
        while stack:
            y, x = stack.pop()
            for dy, dx in steps:
                yy, xx = y + dy, x + dx
                if 0 <= yy < mask.shape[0] and 0 <= xx < mask.shape[1] and mask[yy, xx]:
                    mask[yy, xx] = False
                    stack.append((yy, xx))
    return count


def _pieces_minus_holes(mask: np.ndarray) -> int:
    """Goes up by one for each cut that splits a stroke or opens a loop."""
    holes = _pieces(~np.pad(mask, 1), diagonal=False) - 1
    return _pieces(mask, diagonal=True) - holes


def test_broken_strokes_are_cut_into_pieces_or_opened_loops(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    for seed in range(6):
        digit = images[seed % 3]
        whole = ink_and_paper.ink_stroke(digit, 120, np.random.default_rng(seed))
        broken = cut_gaps(digit, 120, np.random.default_rng(seed))
        assert broken.sum() < whole.sum()
        assert _pieces_minus_holes(broken > 0.5) > _pieces_minus_holes(whole > 0.5), seed


def test_ink_strokes_have_the_asked_size_and_a_crisp_edge(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    for longest in (80.0, 250.0, 700.0):
        coverage = ink_and_paper.ink_stroke(images[0], longest, np.random.default_rng(1))
        rows = np.flatnonzero(coverage.max(axis=1) > 0.5)
        cols = np.flatnonzero(coverage.max(axis=0) > 0.5)
        assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == pytest.approx(longest, abs=3)
        edge = ((coverage > 0.1) & (coverage < 0.9)).sum() / (coverage > 0.5).sum()
        assert edge < 0.35
        assert coverage[0].max() < 0.01 and coverage[:, 0].max() < 0.01  # nothing tints the box


def test_rulings_are_lines_of_the_asked_spacing_and_thickness() -> None:
    lines = ink_and_paper.ruling(
        300, 200, np.random.default_rng(0), spacing=50.0, thickness=1.5, vertical=False
    )
    column = lines[:, 100]
    assert column.sum() == pytest.approx(300 / 50 * 1.5, rel=0.1)
    assert len(np.flatnonzero(np.diff((column > 0.5).astype(int)) == 1)) in (5, 6, 7)


@pytest.mark.parametrize("condition", ["sheet_on_table", "coloured_note", "screen_photo"])
def test_framed_photos_show_the_surface_round_the_sheet(digits, condition: str) -> None:  # type: ignore[no-untyped-def]
    """The sheet, note or screen is lighter than the table or bezel that shows round it."""
    assert condition in FRAMED_PHOTOS
    for data, _ in corpus(condition, *digits, count=3, seed=0):
        image = _decode(data)
        assert image.size == FRAMED_SIZE
        grey = np.asarray(image.convert("L"), dtype=np.float32)
        border = np.concatenate(
            [grey[:4].ravel(), grey[-4:].ravel(), grey[:, :4].ravel(), grey[:, -4:].ravel()]
        )
        middle = grey[
            grey.shape[0] // 3 : -grey.shape[0] // 3, grey.shape[1] // 3 : -grey.shape[1] // 3
        ]
        assert np.median(middle) > np.median(border) + 8, condition


def _stroke_width(mask: np.ndarray) -> float:
    """2 x area / boundary pixels: the width of a stroke."""
    inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    area = int(mask.sum())
    return 2.0 * area / max(area - int(inner.sum()), 1)


def test_a_hairline_stays_thin_and_a_marker_fat_whatever_the_size(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    for longest in (300.0, 900.0):
        rng = np.random.default_rng(0)
        hair = (hairline_stroke(images[0], longest, rng) > 0.5).astype(np.uint8)
        assert 1.5 <= _stroke_width(hair) <= longest / 25
        fat = (marker_stroke(images[0], longest, rng) > 0.5).astype(np.uint8)
        assert _stroke_width(fat) >= longest / 10


def test_a_printed_digit_is_made_from_its_label(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    with pytest.raises(ValueError, match="label"):
        render("printed", images[0], 0, seed=0)
    assert _decode(render("printed", images[0], 0, seed=0, label=3)).format in ("PNG", "JPEG")


def test_the_not_a_digit_set_is_readable_and_made_again_from_its_seed() -> None:
    uploads = not_digits.uploads(len(not_digits.KINDS) * 2, seed=4)
    assert uploads == not_digits.uploads(len(not_digits.KINDS) * 2, seed=4)
    assert uploads != not_digits.uploads(len(not_digits.KINDS) * 2, seed=5)
    for data in uploads:
        image = _decode(data)
        assert image.format in ("PNG", "JPEG") and min(image.size) >= 40
    assert not set(not_digits.DIGIT_LIKE) & set(not_digits.LETTERS)
    assert len(not_digits.uploads(3, seed=4, digit_like=True)) == 3
