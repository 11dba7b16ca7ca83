"""`python -m service reset-models`: back to the bundled versions, saying what it deletes and
asking first; and the seeding the service's commands do when they start."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli.models_folder import reset_models
from service.settings import Settings
from tests.conftest import REPO
from training import bundled, versions


class Terminal(io.StringIO):
    """Typed answers, read as from a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def trained(tmp_path: Path, bundled_models: Path) -> Settings:
    """A state folder after some training: the bundled versions, a trained mpg version (a
    copy of the bundled one's files with another graph) and a pin."""
    settings = Settings(
        _env_file=None, state_dir=tmp_path / "var", bundled_models_dir=bundled_models
    )
    bundled.seed_models_dir(bundled_models, settings.models_dir)
    newest = versions.list_versions(bundled_models, "mpg")[-1]
    trained = versions.version_dir(settings.models_dir, "mpg", newest + 1)
    shutil.copytree(versions.version_dir(bundled_models, "mpg", newest), trained)
    (trained / "saved_model.pb").write_bytes(b"trained here")
    versions.write_pin(settings.models_dir, "mpg", newest + 1)
    return settings


def test_it_says_what_it_deletes_and_does_it_when_told_yes(trained: Settings) -> None:
    before = versions.list_versions(trained.models_dir, "mpg")
    out = io.StringIO()
    assert reset_models(trained, assume_yes=False, stdin=Terminal("y\n"), stdout=out) == 0
    text = out.getvalue()
    assert f"In {trained.models_dir}, this deletes:" in text
    assert f"trained versions: mpg {before[-1]}" in text
    assert "the pins of: mpg" in text
    assert "Delete them? [y/N]" in text
    assert versions.list_versions(trained.models_dir, "mpg") == before[:-1]
    assert versions.read_pin(trained.models_dir, "mpg") is None


def test_anything_but_yes_deletes_nothing(trained: Settings) -> None:
    before = versions.list_versions(trained.models_dir, "mpg")
    out = io.StringIO()
    assert reset_models(trained, assume_yes=False, stdin=Terminal("\n"), stdout=out) == 1
    assert out.getvalue().endswith("Nothing deleted.\n")
    assert versions.list_versions(trained.models_dir, "mpg") == before
    assert versions.read_pin(trained.models_dir, "mpg") == before[-1]


def test_without_a_terminal_it_needs_yes(trained: Settings) -> None:
    before = versions.list_versions(trained.models_dir, "mpg")
    out = io.StringIO()
    assert reset_models(trained, assume_yes=False, stdin=io.StringIO("y\n"), stdout=out) == 1
    assert "add --yes" in out.getvalue()
    assert versions.list_versions(trained.models_dir, "mpg") == before


def test_a_folder_holding_the_bundled_versions_only_has_nothing_to_reset(
    tmp_path: Path, bundled_models: Path
) -> None:
    settings = Settings(
        _env_file=None, state_dir=tmp_path / "var", bundled_models_dir=bundled_models
    )
    out = io.StringIO()
    assert reset_models(settings, assume_yes=False, stdin=io.StringIO(""), stdout=out) == 0
    assert "nothing to reset" in out.getvalue()
    assert versions.list_versions(settings.models_dir, "mpg") == versions.list_versions(
        bundled_models, "mpg"
    )


def test_the_command_line_resets_with_yes(trained: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    env.update(
        PYTHONPATH=str(REPO),
        PERCEPTRON_STATE_DIR=str(trained.state_dir),
        PERCEPTRON_BUNDLED_MODELS_DIR=str(trained.bundled_models_dir),
    )
    result = subprocess.run(
        [sys.executable, "-m", "service", "reset-models", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        f"Done: {trained.models_dir} holds the bundled"
    )
    assert bundled.reset_plan(trained.bundled_models_dir, trained.models_dir).empty
