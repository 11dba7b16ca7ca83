"""Model versions on disk, in the TensorFlow Serving layout `<models>/<name>/<integer>/`.

This module owns the layout and the serving policy that both the trainer (which writes and
promotes versions) and the service (which decides what to load) follow:

* a version is an integer folder holding `saved_model.pb`, `variables/` and `metadata.json`;
  it is written into a hidden temporary folder beside its target and renamed into place, so a
  reader never sees half a version;
* the served version is the pinned one when a pin exists (`pin.json`, written by the API), else
  the pin from the service's settings, else the newest version whose metadata does not say it
  was held back from promotion.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

METADATA_FILE = "metadata.json"
PIN_FILE = "pin.json"
TEMP_PREFIX = ".tmp-"
STALE_TEMP_AGE_S = 24 * 3600


def model_dir(models_dir: Path, name: str) -> Path:
    return models_dir / name


def version_dir(models_dir: Path, name: str, version: int) -> Path:
    return models_dir / name / str(version)


def list_versions(models_dir: Path, name: str) -> list[int]:
    """Returns the integer version folders of a model, oldest first."""
    folder = model_dir(models_dir, name)
    if not folder.is_dir():
        return []
    versions = [
        int(entry.name)
        for entry in folder.iterdir()
        if entry.is_dir() and entry.name.isdigit() and entry.name.isascii()
    ]
    return sorted(versions)


def read_metadata(path: Path) -> dict[str, Any] | None:
    """Returns a version folder's metadata, or None when it is missing or unreadable."""
    try:
        data = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_promoted(metadata: dict[str, Any] | None) -> bool:
    """A version is a candidate for serving unless its trainer explicitly held it back.
    Folders dropped in by hand (no promotion record) count as promoted."""
    if not metadata:
        return True
    promotion = metadata.get("promotion")
    return not (isinstance(promotion, dict) and promotion.get("promoted") is False)


POLICY_REASONS = {
    "always": "served whatever its test metrics, as its trainer asked",
    "never": "kept on disk, never served unless pinned, as its trainer asked",
}
"""Why a version is or is not served when its trainer's policy alone decided."""


def promotion_reason(metadata: dict[str, Any] | None) -> str:
    """Why a version is or is not a candidate for serving, in words for people."""
    promotion = (metadata or {}).get("promotion")
    if not isinstance(promotion, dict):
        return "no promotion record (a version added by hand): counts as promoted"
    reason, policy = promotion.get("reason"), promotion.get("policy")
    # Versions recorded by earlier trainers carry the policy's name alone as their reason.
    if not reason or reason == f"promote={policy}":
        return POLICY_REASONS.get(str(policy), f"promote={policy}")
    return str(reason)


def pin_path(models_dir: Path, name: str) -> Path:
    """Where the API's pin of model `name` is kept (the file may not exist)."""
    return model_dir(models_dir, name) / PIN_FILE


def read_pin(models_dir: Path, name: str) -> int | None:
    try:
        data = json.loads(pin_path(models_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def write_pin(models_dir: Path, name: str, version: int | None) -> None:
    """Pins `version` (None removes the pin). Written atomically: readers never see half a file."""
    folder = model_dir(models_dir, name)
    target = folder / PIN_FILE
    if version is None:
        target.unlink(missing_ok=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}.json"
    temp.write_text(json.dumps({"version": version, "pinned_at": time.time()}), encoding="utf-8")
    temp.replace(target)


def serving_candidates(
    models_dir: Path, name: str, settings_pin: int | None = None, *, api_pin: bool = True
) -> list[int]:
    """Versions in the order the serving policy prefers them: the pin (API, then settings) alone
    when there is one, else promoted versions newest first. `api_pin=False` answers what the
    policy selects once the API's pin is removed (what "unpin" serves)."""
    pin = read_pin(models_dir, name) if api_pin else None
    if pin is None:
        pin = settings_pin
    if pin is not None:
        return [pin]
    versions = list_versions(models_dir, name)
    return [
        v
        for v in reversed(versions)
        if is_promoted(read_metadata(version_dir(models_dir, name, v)))
    ]


def served_version(models_dir: Path, name: str, settings_pin: int | None = None) -> int | None:
    """The version the serving policy selects, or None when there is none."""
    candidates = serving_candidates(models_dir, name, settings_pin)
    return candidates[0] if candidates else None


def write_version(
    models_dir: Path,
    name: str,
    write: Callable[[Path], None],
    metadata: Callable[[int], dict[str, Any]],
) -> tuple[int, Path]:
    """Writes a new version atomically and returns its number and folder.

    `write(folder)` fills a temporary folder (the SavedModel); `metadata(version)` returns the
    metadata to store beside it. The folder is renamed to the next free integer; a concurrent
    writer that takes that number first makes this one retry with the next.
    """
    folder = model_dir(models_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(folder)
    temp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        write(temp)
        for _ in range(100):
            versions = list_versions(models_dir, name)
            version = (versions[-1] + 1) if versions else 1
            _write_json(temp / METADATA_FILE, metadata(version))
            _fsync_tree(temp)
            target = version_dir(models_dir, name, version)
            try:
                # os.rename refuses a non-empty target, so two writers never share a number.
                temp.rename(target)
            except OSError:
                if target.exists():
                    continue
                raise
            _fsync_dir(folder)
            return version, target
        raise RuntimeError(f"could not find a free version number under {folder}")
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def place_version(models_dir: Path, name: str, version: int, write: Callable[[Path], None]) -> bool:
    """Writes version `version` atomically (`write(folder)` fills a temporary folder, renamed
    into place); returns False, writing nothing, when that number is taken already."""
    folder = model_dir(models_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    target = version_dir(models_dir, name, version)
    try:
        write(temp)
        _fsync_tree(temp)
        try:
            temp.rename(target)  # refuses a non-empty target: another writer was first
        except OSError:
            if target.exists():
                return False
            raise
        _fsync_dir(folder)
        return True
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def remove_version(models_dir: Path, name: str, version: int) -> bool:
    """Deletes a version folder; renamed to a temporary name first, so a reader sees it whole
    or not at all. Returns False when it could not be removed (gone already)."""
    doomed = model_dir(models_dir, name) / f"{TEMP_PREFIX}deleted-{version}-{uuid.uuid4().hex}"
    try:
        version_dir(models_dir, name, version).rename(doomed)
    except OSError:
        return False
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(Path(dirpath) / filename, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temporaries(folder: Path) -> None:
    """Leftovers of writers that died mid-export; young ones may belong to a live writer."""
    now = time.time()
    for entry in folder.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > STALE_TEMP_AGE_S:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()


def prune_unpromoted(
    models_dir: Path, name: str, keep: int, settings_pin: int | None = None
) -> list[int]:
    """Deletes the versions held back from promotion except the newest `keep` of them, never
    the served or a pinned one. Each is renamed to a temporary name first, so a reader sees it
    whole or not at all. Returns the deleted versions."""
    held_back = [
        version
        for version in list_versions(models_dir, name)
        if not is_promoted(read_metadata(version_dir(models_dir, name, version)))
    ]
    protected = {
        served_version(models_dir, name, settings_pin),
        read_pin(models_dir, name),
        settings_pin,
    }
    excess = held_back[: max(0, len(held_back) - keep)]
    return [
        version
        for version in excess
        if version not in protected and remove_version(models_dir, name, version)
    ]
