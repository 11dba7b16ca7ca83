"""The bundled model versions: read-only seeds that every models folder starts from.

The repository (and the container image) ships trained versions in its `models/` folder. Nothing
writes there: versions trained by the command line or by jobs, pins and pruning all happen in
the writable models folder (`PERCEPTRON_MODELS_DIR`, by default `<state folder>/models`), so
training never changes the checkout and the test suite never sees what a user trained.

`seed_models_dir` copies every bundled version the models folder lacks, whole, under a
temporary name renamed into place (several processes starting at once each copy or find it
done). A fresh state folder therefore serves the bundled versions, and the versions a new
release bundles arrive at the next start. A version number the models folder already uses for
another model is never overwritten: it is reported as a clash. `reset_models_dir` returns a
models folder to exactly the bundled versions.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from training import versions
from training.hyperparameters import MODEL_NAMES

log = logging.getLogger(__name__)

IDENTITY_FILES = ("saved_model.pb", "variables/variables.index")
"""Files that tell two copies of a version apart: the graph and the index of the weights (the
index records each weight shard's checksum)."""


@dataclass
class SeedReport:
    copied: list[tuple[str, int]] = field(default_factory=list)
    clashes: list[tuple[str, int]] = field(default_factory=list)
    """Bundled versions not copied because the models folder holds another model under the
    same number (one trained there)."""


@dataclass
class ResetPlan:
    """What `reset_models_dir` removes: versions that are not bundled, and pins."""

    versions: list[tuple[str, int]] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.versions and not self.pins


def bundled_versions(bundled_dir: Path | None) -> list[tuple[str, int]]:
    """The (model, version) pairs of the bundled folder; none when it is unset or missing."""
    if bundled_dir is None:
        return []
    return [(name, v) for name in MODEL_NAMES for v in versions.list_versions(bundled_dir, name)]


def _digest(folder: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        for name in IDENTITY_FILES:
            digest.update((folder / name).read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def same_version(bundled: Path, copy: Path) -> bool:
    """Whether `copy` holds the model of `bundled` (a copy of it, not one trained there)."""
    theirs = _digest(bundled)
    return theirs is not None and theirs == _digest(copy)


def same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def seed_models_dir(bundled_dir: Path | None, models_dir: Path) -> SeedReport:
    """Copies each bundled version that `models_dir` lacks; returns what was copied and the
    bundled versions whose number `models_dir` uses for another model. Pins are never copied.
    Nothing happens when the two folders are the same (training a new bundled version)."""
    report = SeedReport()
    if bundled_dir is None or same_folder(bundled_dir, models_dir):
        return report
    if not bundled_dir.is_dir():
        log.warning(
            "no bundled models to copy: %s is not a folder (PERCEPTRON_BUNDLED_MODELS_DIR)",
            bundled_dir,
        )
        return report
    for name, version in bundled_versions(bundled_dir):
        source = versions.version_dir(bundled_dir, name, version)
        target = versions.version_dir(models_dir, name, version)
        if target.exists():
            if not same_version(source, target):
                report.clashes.append((name, version))
                log.warning(
                    "bundled version %d of %s is not served: %s holds another model under that "
                    "number; `python -m service reset-models` returns to the bundled versions",
                    version,
                    name,
                    target,
                )
            continue
        if versions.place_version(models_dir, name, version, functools.partial(_copy, source)):
            report.copied.append((name, version))
    if report.copied:
        log.info(
            "copied the bundled versions %s into %s",
            ", ".join(f"{name} {version}" for name, version in report.copied),
            models_dir,
        )
    return report


def _copy(source: Path, target: Path) -> None:
    """Copies the files only, not their modes: the bundled folder may be read-only (a
    root-owned image layer), its copy must stay the service's to prune or reset."""
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(folder) / name, target / relative / name)


def reset_plan(bundled_dir: Path | None, models_dir: Path) -> ResetPlan:
    """What returning `models_dir` to the bundled versions removes."""
    plan = ResetPlan()
    for name in MODEL_NAMES:
        for version in versions.list_versions(models_dir, name):
            source = (
                None if bundled_dir is None else versions.version_dir(bundled_dir, name, version)
            )
            if source is None or not same_version(
                source, versions.version_dir(models_dir, name, version)
            ):
                plan.versions.append((name, version))
        if versions.pin_path(models_dir, name).exists():
            plan.pins.append(name)
    return plan


def reset_models_dir(bundled_dir: Path | None, models_dir: Path) -> tuple[ResetPlan, SeedReport]:
    """Removes every version that is not bundled and every pin from `models_dir`, then copies
    the bundled versions it lacks. A running service serves the bundled versions at its next
    scan. Refused (ValueError) when `models_dir` is the bundled folder itself."""
    if bundled_dir is not None and same_folder(bundled_dir, models_dir):
        raise ValueError(f"{models_dir} is the bundled folder itself: nothing to reset it to")
    plan = reset_plan(bundled_dir, models_dir)
    for name in plan.pins:
        versions.write_pin(models_dir, name, None)
    for name, version in plan.versions:
        versions.remove_version(models_dir, name, version)
    return plan, seed_models_dir(bundled_dir, models_dir)
