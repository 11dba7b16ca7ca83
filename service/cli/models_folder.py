"""The models folder as the commands see it: seeded with the bundled versions when the service
or a worker starts, and returned to them by `python -m service reset-models`.

The seeding itself is training's (training/bundled.py: training starts the same way); this
module turns its outcome into what a person reads, and asks before deleting anything.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from service.settings import Settings
from training import bundled

log = logging.getLogger(__name__)


class CannotPrepare(Exception):
    """The models folder cannot be written; the message names the setting to change."""


def _versions_text(pairs: list[tuple[str, int]]) -> str:
    by_model: dict[str, list[str]] = {}
    for name, version in pairs:
        by_model.setdefault(name, []).append(str(version))
    return "; ".join(f"{name} {', '.join(numbers)}" for name, numbers in by_model.items())


def prepare_models_dir(settings: Settings) -> None:
    """Copies the bundled versions the models folder lacks. Raises CannotPrepare when the
    folder cannot be written (a read-only file system, another user's folder)."""
    try:
        bundled.seed_models_dir(settings.bundled_models_dir, settings.models_dir)
    except OSError as exc:
        raise CannotPrepare(
            f"cannot copy the bundled models into {settings.models_dir} "
            f"({exc.strerror or exc}); set PERCEPTRON_MODELS_DIR (or PERCEPTRON_STATE_DIR) "
            "to a folder this user can write"
        ) from None


def reset_models(
    settings: Settings,
    *,
    assume_yes: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Deletes the trained versions and pins of the models folder, keeping the bundled
    versions (copied again where missing). Asks first unless `assume_yes`; refuses without a
    terminal to ask on. A running service serves the bundled versions at its next scan."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    models_dir = settings.models_dir
    bundled_dir = settings.bundled_models_dir
    kept = bundled.bundled_versions(bundled_dir)
    if bundled_dir is not None and bundled.same_folder(bundled_dir, models_dir):
        stdout.write(
            f"{models_dir} is the bundled folder itself: point PERCEPTRON_MODELS_DIR at the "
            "models folder to reset\n"
        )
        return 2
    try:
        plan = bundled.reset_plan(bundled_dir, models_dir)
    except OSError as exc:
        stdout.write(f"cannot read {models_dir}: {exc.strerror or exc}\n")
        return 1
    keeping = f"the bundled versions ({_versions_text(kept)})" if kept else "no version"
    if plan.empty:
        bundled.seed_models_dir(bundled_dir, models_dir)
        stdout.write(f"{models_dir} holds {keeping} only: nothing to reset\n")
        return 0
    lines = [f"In {models_dir}, this deletes:"]
    if plan.versions:
        lines.append(f"  trained versions: {_versions_text(plan.versions)}")
    if plan.pins:
        lines.append(f"  the pins of: {', '.join(plan.pins)}")
    lines.append(f"and keeps {keeping}.")
    stdout.write("\n".join(lines) + "\n")
    if not assume_yes:
        if not stdin.isatty():
            stdout.write("Nothing deleted: add --yes to delete them without a question.\n")
            return 1
        stdout.write("Delete them? [y/N] ")
        stdout.flush()
        if stdin.readline().strip().lower() not in ("y", "yes"):
            stdout.write("Nothing deleted.\n")
            return 1
    plan, _ = bundled.reset_models_dir(bundled_dir, models_dir)
    stdout.write(
        f"Done: {models_dir} holds {keeping}. A running service serves them within "
        f"PERCEPTRON_POLL_INTERVAL_S ({settings.poll_interval_s:g} s).\n"
    )
    return 0
