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
    """Where a converted copy is cached once it has passed its check."""


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
    the cached one, a new conversion. The converter's exception escapes when it refuses the
    model."""
    own = path / LITERT_FILE
    with contextlib.suppress(OSError):
        yield Copy(own.read_bytes(), "from the version folder")
    cached = cache_dir / f"{saved_model_digest(path)}{SUFFIX}" if cache_dir else None
    if cached is not None:
        with contextlib.suppress(OSError):
            yield Copy(cached.read_bytes(), "from the cache")
    yield Copy(convert_to_litert(path), "converted at load", cached)


def remember(copy: Copy) -> None:
    """Caches a converted copy that passed its check (replacing a cached one that did not),
    when the cache folder can be written."""
    if copy.source == "converted at load" and copy.cache_path is not None:
        _store(copy.cache_path, copy.flatbuffer)


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
