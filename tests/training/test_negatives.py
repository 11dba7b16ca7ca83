"""training.negatives: pictures holding no digit, in MNIST's layout, drawn from a seed."""

from __future__ import annotations

import numpy as np
import pytest

from training import negatives

DIGIT_SHAPED = set("OoIlSsZzBbGgq")


def test_negatives_are_laid_out_as_mnist_lays_out_a_digit() -> None:
    pictures = negatives.negatives(50, seed=3)
    assert pictures.shape == (50, 28, 28) and pictures.dtype == np.float32
    rows = np.arange(28, dtype=np.float64)
    for picture in pictures:
        assert picture.max() == pytest.approx(1.0)
        assert picture.min() >= 0.0
        ink_rows = np.flatnonzero(picture.max(axis=1) > 0)
        ink_cols = np.flatnonzero(picture.max(axis=0) > 0)
        # Fitted into a 20x20 box: the longer side is 20 (or 21 with the resampling's edge).
        assert 19 <= max(np.ptp(ink_rows), np.ptp(ink_cols)) + 1 <= 21
        mass = picture.sum()
        centre = ((picture.sum(axis=1) @ rows) / mass, (picture.sum(axis=0) @ rows) / mass)
        assert np.allclose(centre, 14.0, atol=1.0), centre


def test_the_same_seed_draws_the_same_pictures_and_another_seed_others() -> None:
    np.testing.assert_array_equal(negatives.negatives(10, seed=1), negatives.negatives(10, seed=1))
    assert not np.array_equal(negatives.negatives(10, seed=1), negatives.negatives(10, seed=2))


def test_every_kind_is_drawn_in_turn() -> None:
    pictures = negatives.negatives(2 * len(negatives.KINDS), seed=4)
    kinds = list(negatives.KINDS)
    # Each kind is drawn from its own generator: redrawing item i alone gives the same picture.
    for index in (0, len(kinds) + 3):
        rng = np.random.default_rng([4, index])
        alone = negatives.mnist_layout(negatives.KINDS[kinds[index % len(kinds)]](rng))
        np.testing.assert_array_equal(pictures[index], alone)


def test_letters_written_like_a_digit_are_not_negatives() -> None:
    assert not DIGIT_SHAPED & set(negatives.LETTERS)
    assert not DIGIT_SHAPED & set(negatives.TYPED)


def test_a_blank_picture_lays_out_as_a_blank_array() -> None:
    blank = negatives.mnist_layout(np.zeros((40, 40), np.uint8))
    assert blank.shape == (28, 28) and not blank.any()
