"""Frames and edges are never ink (the frame rule, through `service.vision.preprocess`): a band
of table round a sheet and an outline round a digit are dropped; a digit that touches the
picture's edge, or fills a tight crop, is kept."""

from __future__ import annotations

import cv2
import numpy as np

from service.vision import preprocess


def _ink_box(tensor: np.ndarray) -> tuple[int, int]:
    """Width and height of the ink in the 28x28."""
    cols = np.flatnonzero(tensor.max(axis=0) > 0.2)
    rows = np.flatnonzero(tensor.max(axis=1) > 0.2)
    return int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1


def _sheet(height: int = 400, width: int = 500) -> np.ndarray:
    return np.full((height, width), 230, np.uint8)


def _one(picture: np.ndarray) -> None:
    """A "1": an upright stroke in the middle."""
    middle = picture.shape[1] // 2
    cv2.line(picture, (middle, 120), (middle, 300), 30, 12)


def test_a_band_of_table_round_the_sheet_is_not_ink() -> None:
    picture = _sheet()
    picture[:14], picture[-14:], picture[:, :14], picture[:, -14:] = 120, 120, 120, 120
    _one(picture)
    width, height = _ink_box(preprocess(picture))
    assert height == 20 and width <= 6  # the 1 alone, not a ring with the 1 shrunk inside


def test_a_band_along_one_edge_is_not_ink() -> None:
    picture = _sheet()
    picture[:, -40:] = np.linspace(200, 40, 40, dtype=np.uint8)  # a scanner's shadow
    _one(picture)
    width, height = _ink_box(preprocess(picture))
    assert height == 20 and width <= 6


def test_an_outline_round_the_digit_is_not_ink() -> None:
    picture = _sheet()
    cv2.rectangle(picture, (60, 40), (440, 360), 40, 4)  # a printed box, a note's edge
    _one(picture)
    width, height = _ink_box(preprocess(picture))
    assert height == 20 and width <= 6


def test_a_digit_that_touches_the_edge_is_kept_whole() -> None:
    picture = np.full((300, 300), 235, np.uint8)
    cv2.line(picture, (30, 4), (270, 4), 30, 14)  # a 7 whose bar lies along the top edge
    cv2.line(picture, (270, 4), (120, 296), 30, 14)
    width, height = _ink_box(preprocess(picture))
    assert height == 20 and width >= 15


def test_a_zero_filling_a_tight_crop_is_kept() -> None:
    picture = np.full((300, 300), 235, np.uint8)
    cv2.ellipse(picture, (150, 150), (140, 143), 0, 0, 360, 30, 14)
    cv2.circle(picture, (150, 150), 3, 30, -1)  # and a speck inside it
    width, height = _ink_box(preprocess(picture))
    assert width >= 18 and height >= 18


def test_a_six_whose_loop_broke_off_keeps_its_stem() -> None:
    picture = np.full((300, 300), 235, np.uint8)
    cv2.ellipse(picture, (170, 170), (110, 120), 0, 150, 330, 30, 12)  # the stem, curving down
    cv2.circle(picture, (160, 210), 55, 30, 12)  # the loop, inside the stem's box, apart from it
    width, height = _ink_box(preprocess(picture))
    assert height == 20 and width >= 14
