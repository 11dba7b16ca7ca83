"""training.user_samples: the accepted samples' file, their held-out slice and their repeats."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from training.user_samples import (
    UserSamplesError,
    load_samples_npz,
    split_held_out,
    with_repeats,
    write_samples_npz,
)


def _samples(counts: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([label for label, n in counts.items() for _ in range(n)], dtype=np.uint8)
    x = np.zeros((len(y), 28, 28), dtype=np.uint8)
    x[:, 0, 0] = np.arange(len(y))  # each image tells which row it was
    return x, y


def test_the_file_round_trips_in_the_mnist_layout(tmp_path: Path) -> None:
    x, y = _samples({3: 2, 7: 1})
    write_samples_npz(tmp_path / "s.npz", x, y)
    read_x, read_y = load_samples_npz(tmp_path / "s.npz")
    assert read_x.dtype == np.uint8 and read_x.shape == (3, 28, 28)
    assert read_y.tolist() == [3, 3, 7] and np.array_equal(read_x, x)


@pytest.mark.parametrize(
    ("x", "y", "says"),
    [
        (np.zeros((2, 28, 28), np.float32), np.zeros(2, np.uint8), "expected uint8"),
        (np.zeros((2, 20, 20), np.uint8), np.zeros(2, np.uint8), "expected uint8"),
        (np.zeros((2, 28, 28), np.uint8), np.zeros(3, np.uint8), "expected uint8"),
        (np.zeros((1, 28, 28), np.uint8), np.array([12], np.uint8), "labels above 9"),
    ],
)
def test_a_malformed_file_is_refused(tmp_path: Path, x, y, says: str) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    (tmp_path / "bad.npz").write_bytes(buffer.getvalue())
    with pytest.raises(UserSamplesError, match=says):
        load_samples_npz(tmp_path / "bad.npz")


def test_a_file_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserSamplesError, match="could not be read"):
        load_samples_npz(tmp_path / "bad.npz")


def test_the_held_out_slice_is_stratified_disjoint_and_seeded() -> None:
    x, y = _samples({1: 10, 4: 5, 7: 2, 9: 1})
    split = split_held_out(x, y, 0.2, seed=0)
    held = dict(zip(*np.unique(split.y_held_out, return_counts=True), strict=True))
    # a fifth of each label, at least one of each label with two or more; the lone 9 trains
    assert held == {1: 2, 4: 1, 7: 1}
    assert sorted(split.y_train.tolist()) == [1] * 8 + [4] * 4 + [7] + [9]
    rows = lambda images: set(images[:, 0, 0].tolist())  # noqa: E731
    assert rows(split.x_train).isdisjoint(rows(split.x_held_out))
    assert rows(split.x_train) | rows(split.x_held_out) == set(range(len(y)))
    again = split_held_out(x, y, 0.2, seed=0)
    assert np.array_equal(again.x_held_out, split.x_held_out)
    other = split_held_out(x, y, 0.2, seed=1)
    assert not np.array_equal(other.x_held_out, split.x_held_out)


def test_no_label_with_two_samples_leaves_nothing_to_test() -> None:
    x, y = _samples({1: 1, 4: 1})
    with pytest.raises(UserSamplesError, match="at least two accepted samples of one label"):
        split_held_out(x, y, 0.2, seed=0)


def test_user_samples_join_mnist_repeated() -> None:
    mnist_x, mnist_y = np.zeros((5, 28, 28)), np.zeros(5, np.int64)
    user_x, user_y = np.ones((2, 28, 28)), np.array([3, 8])
    x, y = with_repeats(mnist_x, mnist_y, user_x, user_y, repeat=4)
    assert len(x) == len(y) == 13
    assert sorted(y[5:].tolist()) == [3] * 4 + [8] * 4 and x[5:].min() == 1
