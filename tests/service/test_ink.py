"""Separating ink from paper (service/vision/ink.py), case by case: each test builds one picture
a person could send, with a known digit drawn into it, and checks what the model would be given.

The corpus test (test_real_uploads.py) measures accuracy over hundreds of such pictures; these
pin down the individual behaviours: pieces of one digit kept together, paper lines and specks
dropped, the paper's light levelled, either polarity, and "no digit" for pages without one."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.vision import NoDigitFound, preprocess

PAPER = 235.0


def tensor_of(data: bytes) -> np.ndarray:
    return preprocess(data)


def encode(pixels: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)))
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two 28x28 pictures are, allowing a pixel of difference in where the centre of
    mass put them (thin strokes shifted by one pixel correlate poorly)."""
    return max(
        float(np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1])
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def pen(digit: np.ndarray, height: int) -> np.ndarray:
    """The digit as a pen stroke `height` pixels high: ink coverage 0..1, crisp like a pen."""
    big = Image.fromarray(digit).resize((height, height), Image.Resampling.BICUBIC)
    values = np.asarray(big, dtype=np.float32) / 255.0
    return np.clip((values - 0.35) * 4.0, 0.0, 1.0)


def page(
    ink: np.ndarray,
    size: tuple[int, int],
    at: tuple[int, int],
    *,
    noise: float = 3.0,
    seed: int = 0,
) -> np.ndarray:
    """Grey paper of `size` (rows, cols) with the ink written at `at` (top, left)."""
    rng = np.random.default_rng(seed)
    sheet = np.full(size, PAPER, dtype=np.float32)
    top, left = at
    height, width = ink.shape
    sheet[top : top + height, left : left + width] *= 1.0 - 0.85 * ink
    return sheet + rng.normal(0.0, noise, size).astype(np.float32)


@pytest.fixture(scope="module")
def digits(mnist) -> dict[int, np.ndarray]:
    """One MNIST test digit of each class, the first of its class in the test set."""
    return {
        label: mnist.x_test[int(np.flatnonzero(mnist.y_test == label)[0])] for label in range(10)
    }


def reference(digit: np.ndarray) -> np.ndarray:
    """What the model is given for the same pen stroke on clean white paper."""
    return tensor_of(encode(page(pen(digit, 140), (220, 220), (40, 40), noise=0.0)))


def test_a_five_whose_top_bar_stands_apart_keeps_the_bar(digits) -> None:
    ink = pen(digits[5], 140)
    rows = np.flatnonzero(ink.max(axis=1) > 0.5)
    bar = rows[0] + (rows[-1] - rows[0]) // 5  # just under the top bar
    ink[bar : bar + 6] = 0.0
    tensor = tensor_of(encode(page(ink, (240, 240), (50, 50))))
    whole = reference(digits[5])
    assert correlation(tensor, whole) > 0.85
    assert tensor[:8].sum() > 0.3 * whole[:8].sum(), "the top bar was dropped"


def test_a_four_in_two_separate_strokes_keeps_both(digits) -> None:
    ink = pen(digits[4], 140)
    cols = np.flatnonzero(ink.max(axis=0) > 0.5)
    middle = (cols[0] + cols[-1]) // 2
    gap = ink.copy()
    gap[:, middle : middle + 5] = 0.0  # the open 4: a stroke, and the crossing one apart
    tensor = tensor_of(encode(page(gap, (240, 240), (50, 50))))
    assert correlation(tensor, reference(digits[4])) > 0.85


def test_a_broken_loop_keeps_every_piece(digits) -> None:
    ink = pen(digits[0], 140)
    broken = ink.copy()
    broken[60:64] = 0.0
    broken[:, 60:63] = 0.0  # a zero in four pieces
    tensor = tensor_of(encode(page(broken, (240, 240), (50, 50))))
    assert correlation(tensor, reference(digits[0])) > 0.85


@pytest.mark.parametrize("grid", [False, True], ids=["ruled", "squared"])
def test_paper_lines_are_removed(digits, grid: bool) -> None:
    ink = pen(digits[7], 150)
    sheet = page(ink, (300, 300), (70, 70))
    lines = np.zeros((300, 300), dtype=np.float32)
    for offset in range(12, 300, 45):
        lines[offset : offset + 2] = 1.0
        if grid:
            lines[:, offset : offset + 2] = 1.0
    sheet *= 1.0 - 0.3 * lines  # light lines, drawn over by the pen
    tensor = tensor_of(encode(sheet, "JPEG", quality=90))
    assert correlation(tensor, reference(digits[7])) > 0.85
    # No straight line is left running across the 28x28 picture.
    assert (tensor > 0.3).sum(axis=1).max() < 20 and (tensor > 0.3).sum(axis=0).max() < 20


def test_a_page_with_only_ruled_lines_has_no_digit() -> None:
    sheet = np.full((300, 300), PAPER, dtype=np.float32)
    for offset in range(12, 300, 40):
        sheet[offset : offset + 2] *= 0.7
    sheet += np.random.default_rng(1).normal(0.0, 3.0, sheet.shape).astype(np.float32)
    with pytest.raises(NoDigitFound):
        tensor_of(encode(sheet))


def test_a_small_digit_in_a_large_photo_fills_the_box(digits) -> None:
    # A 12-megapixel photo; the digit covers about 2.5% of it; the sheet ends at the left
    # with a darker table beside it; the light falls off across the frame.
    height, width = 3000, 4000
    light = np.linspace(1.0, 0.75, width, dtype=np.float32)[None, :]
    photo = np.full((height, width), PAPER, dtype=np.float32) * light
    photo[:, :300] = 70.0
    ink = pen(digits[3], 560)
    photo[1400:1960, 2200:2760] *= 1.0 - 0.85 * ink
    photo += np.random.default_rng(2).normal(0.0, 3.0, photo.shape).astype(np.float32)
    tensor = tensor_of(encode(photo, "JPEG", quality=85))
    rows = np.flatnonzero(tensor.max(axis=1) > 0.2)
    assert rows[-1] - rows[0] + 1 >= 19, "the digit was not cropped out of the photo"
    assert correlation(tensor, reference(digits[3])) > 0.85


def test_a_shadow_across_the_digit_is_levelled(digits) -> None:
    ink = pen(digits[2], 160)
    sheet = page(ink, (260, 260), (50, 50))
    sheet[130:, :] *= 0.45  # a hard-edged shadow over the lower half
    tensor = tensor_of(encode(sheet, "JPEG", quality=90))
    assert correlation(tensor, reference(digits[2])) > 0.85


def test_a_dim_photo_is_still_dark_ink_on_paper(digits) -> None:
    sheet = page(pen(digits[6], 150), (260, 260), (55, 55)) * 0.35  # paper at about 80
    assert correlation(tensor_of(encode(sheet)), reference(digits[6])) > 0.85


def test_chalk_on_a_board_is_read_as_light_ink(digits) -> None:
    rng = np.random.default_rng(3)
    board = np.full((260, 260), 45.0, dtype=np.float32) + rng.normal(0.0, 4.0, (260, 260))
    chalk = pen(digits[8], 150)
    board[55:205, 55:205] += 170.0 * chalk
    assert correlation(tensor_of(encode(board)), reference(digits[8])) > 0.85


@pytest.mark.parametrize("note_share", [0.15, 0.3, 0.45])
def test_a_note_on_a_dark_desk_is_dark_ink_on_paper(digits, note_share: float) -> None:
    """Most of the photo is a dark desk, so most pixels are dark; the ink is still the dark
    strokes on the light note, not the note on the desk."""
    rng = np.random.default_rng(4)
    height, width = 300, 400
    side = round((note_share * height * width) ** 0.5)
    top, left = (height - side) // 2, (width - side) // 3
    photo = np.full((height, width), 70.0, dtype=np.float32)
    photo[top : top + side, left : left + side] = page(
        pen(digits[4], round(0.6 * side)), (side, side), (side // 5, side // 5)
    )
    photo += rng.normal(0.0, 3.0, photo.shape).astype(np.float32)
    tensor = tensor_of(encode(photo, "JPEG", quality=90))
    assert correlation(tensor, reference(digits[4])) > 0.85


@pytest.mark.parametrize("ink_colour", [(25, 45, 160), (185, 35, 45)], ids=["blue", "red"])
def test_coloured_ink(digits, ink_colour: tuple[int, int, int]) -> None:
    ink = pen(digits[9], 150)[..., None]
    paper = np.array([240, 236, 225], dtype=np.float32)
    colour = np.array(ink_colour, dtype=np.float32)
    sheet = np.tile(paper, (260, 260, 1))
    sheet[55:205, 55:205] = paper * (1.0 - ink) + colour * ink
    tensor = tensor_of(encode(sheet, "JPEG", quality=85))
    assert correlation(tensor, reference(digits[9])) > 0.85


def test_faint_pencil(digits) -> None:
    ink = pen(digits[1], 150) * np.random.default_rng(4).uniform(0.6, 1.0, (150, 150))
    sheet = np.full((260, 260), PAPER, dtype=np.float32)
    sheet[55:205, 55:205] *= 1.0 - 0.35 * ink  # graphite: only about a third darker
    sheet += np.random.default_rng(5).normal(0.0, 2.0, sheet.shape).astype(np.float32)
    assert correlation(tensor_of(encode(sheet)), reference(digits[1])) > 0.85


def test_specks_and_paper_texture_around_the_digit_are_dropped(digits) -> None:
    rng = np.random.default_rng(6)
    sheet = page(pen(digits[3], 120), (300, 300), (90, 90))
    for _ in range(25):  # dust and fibres, a pixel or three each, anywhere on the page
        y, x = rng.integers(0, 297, size=2)
        sheet[y : y + rng.integers(1, 4), x : x + rng.integers(1, 4)] = 60.0
    clean = tensor_of(encode(page(pen(digits[3], 120), (300, 300), (90, 90))))
    assert correlation(tensor_of(encode(sheet)), clean) > 0.95


@pytest.mark.parametrize("texture", ["blotches", "grain"])
def test_a_page_of_texture_alone_has_no_digit(texture: str) -> None:
    rng = np.random.default_rng(7)
    if texture == "blotches":  # uneven, recycled-looking paper
        field = Image.fromarray(rng.normal(0, 1, (12, 12)).astype(np.float32), mode="F")
        smooth = np.asarray(field.resize((400, 300), Image.Resampling.BICUBIC))
        sheet = PAPER + 10.0 * smooth
    else:  # sensor noise on plain paper
        sheet = PAPER + rng.normal(0.0, 6.0, (300, 400))
    with pytest.raises(NoDigitFound):
        tensor_of(encode(sheet, "JPEG", quality=80))
