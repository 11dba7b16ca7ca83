"""Where a version's LiteRT copy comes from: its own folder (written at export), the cache of
copies converted at load, or the converter, in that order of cost.

A conversion costs 1.5 to 2 s of CPU per model (bench/RESULTS.md), so copies converted at load
(bundled models, versions copied in by hand) are kept in a cache folder, named by a digest of
the SavedModel's files and the converter's version: a copy is found again whatever the
version's number or folder, and never for a SavedModel that changed. A cache folder that
cannot be written only means converting at every load. Every copy, wherever it comes from, is
checked against the SavedModel before it serves (`service.runtimes.selection`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.litert import LITERT_FILE, convert_to_litert, write_file_atomically

log = logging.getLogger(__name__)

CACHED_COPIES = 32
"""Copies kept in the cache folder (the most recently written); older ones are deleted."""
SUFFIX = ".tflite"


@dataclass(frozen=True)
class Copy:
    flatbuffer: bytes
    source: str
    """"from the version folder", "from the cache" or "converted at load"."""
    cache_path: Path | None = None
    """The cache entry it was read from or written to."""


def saved_model_digest(path: Path) -> str:
    """A digest of the SavedModel in `path` (saved_model.pb and every variables file, names
    and bytes) and of the converter's version."""
    import tensorflow as tf

    digest = hashlib.sha256(f"tensorflow {tf.__version__}\n".encode())
    files = [path / "saved_model.pb", *sorted((path / "variables").glob("*"))]
    for file in files:
        if file.is_file():
            digest.update(f"{file.relative_to(path)}\n".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def copies(path: Path, cache_dir: Path | None) -> Iterator[Copy]:
    """The LiteRT copies of the SavedModel in `path`, cheapest first: the version folder's,
    the cached one, a new conversion (cached at once, when the cache folder can be written).
    One process converts a model at a time: the serving processes start together, and the
    others wait for its copy instead of converting the same model again. The converter's
    exception escapes when it refuses the model."""
    own = path / LITERT_FILE
    with contextlib.suppress(OSError):
        yield Copy(own.read_bytes(), "from the version folder")
    if cache_dir is None:
        yield Copy(convert_to_litert(path), "converted at load")
        return
    cached = cache_dir / f"{saved_model_digest(path)}{SUFFIX}"
    with contextlib.suppress(OSError):
        yield Copy(cached.read_bytes(), "from the cache", cached)
    with _converting(cached):
        try:
            copy = Copy(cached.read_bytes(), "from the cache", cached)
        except OSError:
            copy = Copy(convert_to_litert(path), "converted at load", cached)
            _store(cached, copy.flatbuffer)
    yield copy


def forget(copy: Copy) -> None:
    """Deletes a cached copy that failed its check, so the next load converts afresh."""
    if copy.cache_path is not None:
        with contextlib.suppress(OSError):
            copy.cache_path.unlink(missing_ok=True)


@contextlib.contextmanager
def _converting(cached: Path) -> Iterator[None]:
    """Holds the cache entry's lock file while converting; without a writable cache folder,
    nothing to hold."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        lock = (cached.parent / f"{cached.name}.lock").open("a")
    except OSError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _store(target: Path, flatbuffer: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomically(target, flatbuffer)
    except OSError as exc:
        log.info("LiteRT copy not cached (%s): converting again at the next load", exc)
        return
    _prune(target.parent)


def _prune(folder: Path) -> None:
    with contextlib.suppress(OSError):
        entries = sorted(
            folder.glob(f"*{SUFFIX}"), key=lambda entry: entry.stat().st_mtime, reverse=True
        )
        for stale in entries[CACHED_COPIES:]:
            stale.unlink(missing_ok=True)
            stale.with_name(f"{stale.name}.lock").unlink(missing_ok=True)
