"""Samples people corrected and an administrator accepted, as training reads them: an .npz in
the MNIST layout (`x` N x 28 x 28 uint8, white ink on black; `y` N uint8), the same file that
`GET /samples/export` answers. The service writes it (`write_samples_npz`) and hands its path to
the training run, so training never reads the job database.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from training.signatures import IMAGE_SIZE, NUM_CLASSES

SAMPLES_FILE = "user-samples.npz"
"""The name the job runner gives the accepted samples it hands to a training run."""


class UserSamplesError(Exception):
    """The accepted samples cannot support the run; the message says what to do, names no
    file, and is shown to whoever started the job."""


def write_samples_npz(target: Path | IO[bytes], x: np.ndarray, y: np.ndarray) -> None:
    """Writes samples in the MNIST layout (compressed): `x` N x 28 x 28 uint8, `y` N uint8."""
    np.savez_compressed(target, x=x.astype(np.uint8), y=y.astype(np.uint8))


def load_samples_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads and checks an .npz written by `write_samples_npz`; raises UserSamplesError."""
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as archive:
            x, y = archive["x"], archive["y"]
    except (KeyError, zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise UserSamplesError(
            f"the accepted samples could not be read ({type(exc).__name__})"
        ) from exc
    if x.dtype != np.uint8 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or y.shape != x.shape[:1]:
        raise UserSamplesError(
            f"the accepted samples are {x.dtype}{list(x.shape)} with {len(y)} labels; "
            "expected uint8 N x 28 x 28 with N labels"
        )
    if len(y) and int(y.max()) >= NUM_CLASSES:
        raise UserSamplesError("the accepted samples hold labels above 9")
    return x, y


@dataclass(frozen=True)
class UserSampleSplit:
    """Accepted samples split for one run: `train` joins MNIST's training rows (repeated),
    `held_out` is the second test set and is never trained on. Arrays as in the .npz."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_held_out: np.ndarray
    y_held_out: np.ndarray


def split_held_out(x: np.ndarray, y: np.ndarray, share: float, seed: int) -> UserSampleSplit:
    """Holds out `share` of each label's samples (at least one of every label that has two or
    more, so each label a person corrected is tested), chosen at random with `seed`."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        if len(rows) >= 2:
            held.extend(rows[: max(1, round(share * len(rows)))].tolist())
    if not held:
        raise UserSamplesError(
            f"user_samples=accepted needs at least two accepted samples of one label to hold "
            f"one out for testing; there are {len(y)} accepted: accept more in the Samples "
            "panel, or train with user_samples=none"
        )
    mask = np.zeros(len(y), dtype=bool)
    mask[held] = True
    return UserSampleSplit(x[~mask], y[~mask], x[mask], y[mask])


def with_repeats(
    x_mnist: np.ndarray, y_mnist: np.ndarray, x_user: np.ndarray, y_user: np.ndarray, repeat: int
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's rows followed by the user samples `repeat` times (fit shuffles every epoch)."""
    x = np.concatenate([x_mnist, np.repeat(x_user, repeat, axis=0)])
    y = np.concatenate([y_mnist, np.repeat(y_user, repeat, axis=0)])
    return x, y
