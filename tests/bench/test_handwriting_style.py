"""bench.handwriting_style: the feedback experiment's writing style, as samples hold it."""

from __future__ import annotations

import numpy as np

from bench.handwriting_style import STYLE_LABELS, style_set


def test_the_style_comes_out_in_the_mnist_layout_with_its_labels() -> None:
    x, y = style_set(9, first_seed=5)
    assert x.shape == (9, 28, 28) and x.dtype == np.uint8
    assert y.tolist() == list(STYLE_LABELS) * 3
    # white ink on black, inside MNIST's 20x20 box with a margin
    assert x.max() == 255 and x[:, :3].max() == 0 and x[:, :, -3:].max() == 0


def test_seeds_draw_different_digits_and_repeat_exactly() -> None:
    first, _ = style_set(6, first_seed=100)
    again, _ = style_set(6, first_seed=100)
    other, _ = style_set(6, first_seed=200)
    assert np.array_equal(first, again)
    assert all(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_a_hurried_hand_differs_from_a_neat_one() -> None:
    neat, _ = style_set(3, first_seed=7, wobble=0.0)
    hurried, _ = style_set(3, first_seed=7, wobble=0.1)
    assert not np.array_equal(neat, hurried)
