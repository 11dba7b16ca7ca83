"""The bundled versions as seeds of the models folder: copied whole when missing, never
overwritten, never written to, and restored by a reset that deletes trained versions and pins."""

from __future__ import annotations

import json
import logging
import shutil
import stat
import threading
from pathlib import Path

import pytest

from training import bundled, versions


def _fake_version(folder: Path, graph: bytes = b"graph", promoted: bool = True) -> None:
    """A version folder as the seeding sees one (the files it compares, and metadata)."""
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(graph)
    (folder / "variables" / "variables.index").write_bytes(b"index-" + graph)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
    metadata = {"promotion": {"promoted": promoted, "policy": "auto", "reason": "a test"}}
    (folder / versions.METADATA_FILE).write_text(json.dumps(metadata))


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A bundled folder with digit 1 and mpg 2, read-only as in the image."""
    root = tmp_path / "bundled"
    _fake_version(root / "digit" / "1", b"digit-1")
    _fake_version(root / "mpg" / "2", b"mpg-2")
    for path in root.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield root
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)


def test_a_fresh_models_folder_gets_every_bundled_version(seeds: Path, tmp_path: Path) -> None:
    models = tmp_path / "var" / "models"
    report = bundled.seed_models_dir(seeds, models)
    assert sorted(report.copied) == [("digit", 1), ("mpg", 2)] and not report.clashes
    assert versions.served_version(models, "digit") == 1
    assert versions.served_version(models, "mpg") == 2
    assert bundled.same_version(seeds / "mpg" / "2", models / "mpg" / "2")
    # The copy is the service's to prune or reset, whatever the bundled folder's modes.
    copied = models / "mpg" / "2" / "saved_model.pb"
    assert copied.stat().st_mode & stat.S_IWUSR
    assert not list((models / "mpg").glob(f"{versions.TEMP_PREFIX}*"))


def test_seeding_again_copies_nothing_and_keeps_trained_versions(
    seeds: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    bundled.seed_models_dir(seeds, models)
    _fake_version(models / "mpg" / "3", b"trained-here")
    versions.write_pin(models, "digit", 1)
    report = bundled.seed_models_dir(seeds, models)
    assert report.copied == [] and report.clashes == []
    assert versions.list_versions(models, "mpg") == [2, 3]
    assert versions.read_pin(models, "digit") == 1


def test_a_version_deleted_from_the_models_folder_comes_back(seeds: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    bundled.seed_models_dir(seeds, models)
    shutil.rmtree(models / "digit" / "1")
    assert bundled.seed_models_dir(seeds, models).copied == [("digit", 1)]


def test_a_trained_version_under_a_bundled_number_is_never_overwritten(
    seeds: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = tmp_path / "models"
    _fake_version(models / "mpg" / "2", b"trained-here-first")
    with caplog.at_level(logging.WARNING, logger="training.bundled"):
        report = bundled.seed_models_dir(seeds, models)
    assert report.clashes == [("mpg", 2)]
    assert (models / "mpg" / "2" / "saved_model.pb").read_bytes() == b"trained-here-first"
    assert "bundled version 2 of mpg is not served" in caplog.text
    assert "reset-models" in caplog.text


def test_starting_together_copies_each_version_once(seeds: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    reports: list[bundled.SeedReport] = []
    threads = [
        threading.Thread(target=lambda: reports.append(bundled.seed_models_dir(seeds, models)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    copied = [pair for report in reports for pair in report.copied]
    assert sorted(copied) == [("digit", 1), ("mpg", 2)]
    assert not any(report.clashes for report in reports)
    assert bundled.same_version(seeds / "digit" / "1", models / "digit" / "1")


def test_a_bundled_folder_that_is_missing_is_said_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="training.bundled"):
        assert bundled.seed_models_dir(tmp_path / "nowhere", tmp_path / "models").copied == []
    assert f"{tmp_path / 'nowhere'} is not a folder (PERCEPTRON_BUNDLED_MODELS_DIR)" in caplog.text


def test_no_seeds_and_the_bundled_folder_itself_are_left_alone(seeds: Path, tmp_path: Path) -> None:
    assert bundled.seed_models_dir(None, tmp_path / "models").copied == []
    assert not (tmp_path / "models").exists()
    assert bundled.seed_models_dir(seeds, seeds).copied == []  # training a new bundled version


def test_reset_deletes_trained_versions_and_pins_and_keeps_the_bundled(
    seeds: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    bundled.seed_models_dir(seeds, models)
    _fake_version(models / "mpg" / "3", b"trained")
    _fake_version(models / "mpg" / "4", b"held-back", promoted=False)
    _fake_version(models / "digit" / "2", b"trained-digit")
    versions.write_pin(models, "mpg", 3)
    shutil.rmtree(models / "digit" / "1")  # lost: the reset copies it again

    plan = bundled.reset_plan(seeds, models)
    assert sorted(plan.versions) == [("digit", 2), ("mpg", 3), ("mpg", 4)]
    assert plan.pins == ["mpg"]
    done, seeded = bundled.reset_models_dir(seeds, models)
    assert done.versions == plan.versions
    assert seeded.copied == [("digit", 1)]
    assert versions.list_versions(models, "digit") == [1]
    assert versions.list_versions(models, "mpg") == [2]
    assert versions.read_pin(models, "mpg") is None
    assert bundled.reset_plan(seeds, models).empty


def test_reset_replaces_a_trained_version_that_took_a_bundled_number(
    seeds: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    _fake_version(models / "mpg" / "2", b"trained-here-first")
    bundled.reset_models_dir(seeds, models)
    assert bundled.same_version(seeds / "mpg" / "2", models / "mpg" / "2")


def test_resetting_the_bundled_folder_itself_is_refused(seeds: Path) -> None:
    with pytest.raises(ValueError, match="bundled folder itself"):
        bundled.reset_models_dir(seeds, seeds)
