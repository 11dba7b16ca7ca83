"""The two data sets: where they are found, how they are fetched, and how they are checked.

A file is looked for in the configured data folder, then in the download cache; failing both it
is downloaded from its canonical location and verified by sha256. Local files are validated by
content (the copies in circulation are re-compressed, so their hashes differ), and every failure
is a `DataError` that says which file, where it was looked for and how to fix it.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.cars import DATA_FILE_COLUMNS, FEATURE_NAMES, ORIGINS, TARGET


class DataError(Exception):
    """A data set is missing, unreachable or not what it should be."""


@dataclass(frozen=True)
class DataFile:
    name: str
    url: str
    sha256: str
    """Hash of the canonical download; checked for downloads only."""


MNIST_FILE = DataFile(
    name="mnist.npz",
    url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
)
AUTO_MPG_FILE = DataFile(
    name="auto-mpg.data",
    url="http://archive.ics.uci.edu/ml/machine-learning-databases/auto-mpg/auto-mpg.data",
    sha256="48b830e11feee5572525f8f1691ddb9d38d3d7b7063edcd8fca672c2a5e17d8d",
)
DATA_FILES = {"mnist": MNIST_FILE, "auto-mpg": AUTO_MPG_FILE}

AUTO_MPG_ROWS = 398
AUTO_MPG_COMPLETE_ROWS = 392
DOWNLOAD_TIMEOUT_S = 60.0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(
    data_file: DataFile, data_dir: Path | None, cache_dir: Path, *, download: bool = True
) -> Path:
    """Returns the path of `data_file`: in `data_dir`, else in `cache_dir`, else downloaded
    into `cache_dir`. Raises DataError naming every place looked at when it cannot be had."""
    searched = [d / data_file.name for d in (data_dir, cache_dir) if d is not None]
    for candidate in searched:
        if candidate.is_file():
            return candidate
    if data_dir is not None and not data_dir.is_dir():
        raise DataError(
            f"data folder {data_dir} does not exist, so {data_file.name} cannot be read from it "
            "(set DATA_DIR or --data-dir to the folder that holds it)"
        )
    if not download:
        raise DataError(_missing_message(data_file, searched, reason="downloads are disabled"))
    try:
        return _download(data_file, cache_dir)
    except OSError as exc:
        raise DataError(_missing_message(data_file, searched, reason=str(exc))) from exc


def _missing_message(data_file: DataFile, searched: list[Path], reason: str) -> str:
    places = ", ".join(str(p) for p in searched) or "(no folder configured)"
    return (
        f"{data_file.name} not found (looked in {places}) and could not be downloaded from "
        f"{data_file.url}: {reason}. Download it yourself into a folder and point DATA_DIR "
        "(or --data-dir) at that folder."
    )


def _download(data_file: DataFile, cache_dir: Path) -> Path:
    import httpx  # only needed where there is internet

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / data_file.name
    partial = cache_dir / f".{data_file.name}.{os.getpid()}.part"
    digest = hashlib.sha256()
    try:
        with (
            httpx.stream(
                "GET", data_file.url, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True
            ) as response,
            partial.open("wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes():
                digest.update(chunk)
                out.write(chunk)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise OSError(f"download failed: {exc}") from exc
    if digest.hexdigest() != data_file.sha256:
        partial.unlink(missing_ok=True)
        raise OSError(
            f"downloaded file has sha256 {digest.hexdigest()}, expected {data_file.sha256}"
        )
    partial.replace(target)
    return target


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


_MNIST_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}


def load_mnist(path: Path) -> Mnist:
    """Reads MNIST in the Keras npz layout, checking keys, shapes, dtypes and value ranges."""
    try:
        # Opened here, not by np.load, which leaks the handle when the zip directory is unreadable.
        with path.open("rb") as f, np.load(f, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in _MNIST_SHAPES if key in archive.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise DataError(
            f"{path} is not a readable npz archive (truncated or corrupt?): {exc}"
        ) from exc
    for key, shape in _MNIST_SHAPES.items():
        array = arrays.get(key)
        if array is None:
            raise DataError(f"{path} has no array {key!r}: expected the Keras MNIST npz layout")
        if array.shape != shape or array.dtype != np.uint8:
            raise DataError(
                f"{path}: {key} is {array.dtype}{list(array.shape)}, expected uint8{list(shape)}"
            )
    for key in ("y_train", "y_test"):
        if arrays[key].max() > 9:
            raise DataError(f"{path}: {key} holds labels above 9")
    for key in ("x_train", "x_test"):
        if arrays[key].max() < 200:
            raise DataError(f"{path}: {key} has no bright pixels; expected white ink on black")
    return Mnist(**arrays)


def load_auto_mpg(path: Path) -> pd.DataFrame:
    """Reads the UCI file as the classic tutorial does ('?' is missing, rows with a missing value
    dropped), checking the row count, columns and value ranges. Returns 392 complete rows with
    the columns of `training.cars.DATA_FILE_COLUMNS`, origin as its code 1-3."""
    try:
        text = path.read_text(encoding="ascii")
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path} is not the UCI auto-mpg.data text file: {exc}") from exc
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            names=list(DATA_FILE_COLUMNS),
            na_values="?",
            comment="\t",
            sep=" ",
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse as whitespace-separated columns: {exc}") from exc
    if len(frame) != AUTO_MPG_ROWS:
        raise DataError(
            f"{path} has {len(frame)} rows, expected the {AUTO_MPG_ROWS} of the UCI file "
            "(truncated or a different file?)"
        )
    for column in DATA_FILE_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            line = int(bad.idxmax()) + 1
            raise DataError(
                f"{path}: column {column!r} has a non-numeric value {frame[column][bad].iloc[0]!r} "
                f"on line {line}; expected {', '.join(DATA_FILE_COLUMNS)} then a tab and the name"
            )
        frame[column] = values
    missing = {column: int(n) for column, n in frame.isna().sum().items() if n}
    frame = frame.dropna().reset_index(drop=True)
    if len(frame) != AUTO_MPG_COMPLETE_ROWS:
        where = ", ".join(f"{column} ({n} rows)" for column, n in missing.items())
        raise DataError(
            f"{path} has {len(frame)} complete rows, expected {AUTO_MPG_COMPLETE_ROWS}; values "
            f"are missing in {where} (the UCI file lacks horsepower in 6 rows only: a column "
            "is probably missing or shifted)"
        )
    _check_ranges(path, frame)
    return frame


_AUTO_MPG_RANGES = {
    TARGET: (5, 60),
    "cylinders": (3, 8),
    "displacement": (50, 500),
    "horsepower": (40, 250),
    "weight": (1500, 5500),
    "acceleration": (5, 30),
    "model_year": (70, 82),
    "origin": (1, len(ORIGINS)),
}


def _check_ranges(path: Path, frame: pd.DataFrame) -> None:
    for column, (low, high) in _AUTO_MPG_RANGES.items():
        outside = frame[(frame[column] < low) | (frame[column] > high)]
        if len(outside):
            raise DataError(
                f"{path}: {column} = {outside[column].iloc[0]} is outside {low}-{high}; "
                "the columns are probably shifted or the file is not auto-mpg.data"
            )


def standard_split(cars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tutorial's split, kept as the standard test split: 80% train (314 rows) sampled with
    random_state=0, the remaining 78 rows for test."""
    train = cars.sample(frac=0.8, random_state=0)
    test = cars.drop(train.index)
    return train, test


def features_of(cars: pd.DataFrame) -> dict[str, np.ndarray]:
    """Returns the model's named inputs for a frame of cars, as float32 columns."""
    return {name: cars[name].to_numpy(dtype=np.float32) for name in FEATURE_NAMES}
