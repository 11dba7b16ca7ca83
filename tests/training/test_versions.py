"""training.versions: the TensorFlow Serving layout, atomic version writes, pins and the
serving policy."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from training import versions
from training.versions import METADATA_FILE, PIN_FILE, TEMP_PREFIX


def _fake_saved_model(folder: Path) -> None:
    """What `write` does for a real export: fill the folder it is given."""
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables").mkdir()
    (folder / "variables" / "variables.index").write_bytes(b"index")


def _metadata(version: int) -> dict[str, Any]:
    return {"model": "digit", "version": version}


def _write(models: Path, name: str = "digit") -> tuple[int, Path]:
    return versions.write_version(models, name, _fake_saved_model, _metadata)


def _add_version(
    models: Path, version: int, metadata: dict[str, Any] | None, name: str = "digit"
) -> None:
    folder = versions.version_dir(models, name, version)
    folder.mkdir(parents=True)
    if metadata is not None:
        (folder / METADATA_FILE).write_text(json.dumps(metadata), encoding="utf-8")


def _temporaries(models: Path, name: str = "digit") -> list[str]:
    return sorted(p.name for p in (models / name).glob(f"{TEMP_PREFIX}*"))


def test_list_versions_sorts_integers_and_ignores_everything_else(tmp_path: Path) -> None:
    assert versions.list_versions(tmp_path, "digit") == []
    for name in ("2", "10", "1", "latest", "v3", "3.5", "-4", ".tmp-abc", "٣"):
        (tmp_path / "digit" / name).mkdir(parents=True)
    (tmp_path / "digit" / "7").write_text("a file, not a version")
    (tmp_path / "digit" / PIN_FILE).write_text('{"version": 2}')
    assert versions.list_versions(tmp_path, "digit") == [1, 2, 10]


def test_versions_are_numbered_1_2_3(tmp_path: Path) -> None:
    written = [_write(tmp_path) for _ in range(3)]
    assert [v for v, _ in written] == [1, 2, 3]
    for version, path in written:
        assert path == tmp_path / "digit" / str(version)
        assert (path / "saved_model.pb").read_bytes() == b"graph"
        assert (path / "variables" / "variables.index").is_file()
        assert versions.read_metadata(path) == {"model": "digit", "version": version}
    assert versions.list_versions(tmp_path, "digit") == [1, 2, 3]
    assert _temporaries(tmp_path) == []


def test_numbering_continues_after_the_largest_and_ignores_other_folders(tmp_path: Path) -> None:
    _add_version(tmp_path, 1, _metadata(1))
    _add_version(tmp_path, 5, _metadata(5))
    (tmp_path / "digit" / "99-old").mkdir()
    (tmp_path / "digit" / "backup").mkdir()
    assert _write(tmp_path)[0] == 6
    assert versions.list_versions(tmp_path, "digit") == [1, 5, 6]


def test_models_are_numbered_separately(tmp_path: Path) -> None:
    _write(tmp_path, "digit")
    _write(tmp_path, "digit")
    assert _write(tmp_path, "mpg")[0] == 1


def test_an_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    _, first = _write(tmp_path)
    (first / "saved_model.pb").write_bytes(b"served bytes")
    _write(tmp_path)
    assert (first / "saved_model.pb").read_bytes() == b"served bytes"
    assert versions.read_metadata(first) == _metadata(1)


def test_a_failing_export_leaves_no_version_and_no_temporary(tmp_path: Path) -> None:
    _write(tmp_path)

    def crash(folder: Path) -> None:
        _fake_saved_model(folder)
        raise RuntimeError("disk full halfway through")

    with pytest.raises(RuntimeError, match="disk full"):
        versions.write_version(tmp_path, "digit", crash, _metadata)
    assert versions.list_versions(tmp_path, "digit") == [1]
    assert _temporaries(tmp_path) == []
    assert _write(tmp_path)[0] == 2


def test_failing_metadata_leaves_no_version_and_no_temporary(tmp_path: Path) -> None:
    def broken_metadata(version: int) -> dict[str, Any]:
        raise ValueError("metrics missing")

    with pytest.raises(ValueError, match="metrics missing"):
        versions.write_version(tmp_path, "digit", _fake_saved_model, broken_metadata)
    assert versions.list_versions(tmp_path, "digit") == []
    assert _temporaries(tmp_path) == []


def test_the_export_is_written_beside_its_target_out_of_sight(tmp_path: Path) -> None:
    _write(tmp_path)
    seen: dict[str, Any] = {}

    def write(folder: Path) -> None:
        _fake_saved_model(folder)
        seen["folder"] = folder
        seen["listed"] = versions.list_versions(tmp_path, "digit")
        seen["served"] = versions.served_version(tmp_path, "digit")

    def metadata(version: int) -> dict[str, Any]:
        seen["listed_at_metadata"] = versions.list_versions(tmp_path, "digit")
        return _metadata(version)

    version, path = versions.write_version(tmp_path, "digit", write, metadata)
    assert seen["folder"].parent == tmp_path / "digit"  # same file system: rename is atomic
    assert seen["folder"].name.startswith(TEMP_PREFIX)
    assert seen["listed"] == seen["listed_at_metadata"] == [1]
    assert seen["served"] == 1
    assert not seen["folder"].exists()
    assert (version, path) == (2, tmp_path / "digit" / "2")


def test_a_number_taken_by_another_writer_makes_this_one_retry(tmp_path: Path) -> None:
    """The race: another writer renames its version 1 into place after this writer listed the
    folder (and picked 1) but before its own rename."""
    asked: list[int] = []

    def metadata(version: int) -> dict[str, Any]:
        asked.append(version)
        if len(asked) == 1:
            _add_version(tmp_path, version, {"model": "digit", "version": version, "by": "other"})
        return _metadata(version)

    version, path = versions.write_version(tmp_path, "digit", _fake_saved_model, metadata)
    assert asked == [1, 2]
    assert (version, path) == (2, tmp_path / "digit" / "2")
    assert versions.read_metadata(path) == _metadata(2)
    assert versions.read_metadata(tmp_path / "digit" / "1") == {
        "model": "digit",
        "version": 1,
        "by": "other",
    }
    assert _temporaries(tmp_path) == []


def test_concurrent_writers_get_distinct_numbers_and_readers_see_only_whole_versions(
    tmp_path: Path,
) -> None:
    writers, per_writer = 6, 4
    stop = threading.Event()
    problems: list[str] = []
    observed: set[int] = set()

    def read_continuously() -> None:
        while not stop.is_set():
            for version in versions.list_versions(tmp_path, "digit"):
                folder = versions.version_dir(tmp_path, "digit", version)
                metadata = versions.read_metadata(folder)
                if metadata is None or metadata.get("version") != version:
                    problems.append(f"version {version} seen with metadata {metadata}")
                if not (folder / "saved_model.pb").is_file():
                    problems.append(f"version {version} seen without saved_model.pb")
                observed.add(version)

    def write_several() -> None:
        for _ in range(per_writer):
            _write(tmp_path)

    reader = threading.Thread(target=read_continuously)
    reader.start()
    threads = [threading.Thread(target=write_several) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join()
    total = writers * per_writer
    assert problems == []
    assert observed  # the reader did look while versions were being written
    assert versions.list_versions(tmp_path, "digit") == list(range(1, total + 1))
    for version in range(1, total + 1):
        assert versions.read_metadata(
            versions.version_dir(tmp_path, "digit", version)
        ) == _metadata(version)
    assert _temporaries(tmp_path) == []


def test_only_stale_temporaries_are_cleaned_up(tmp_path: Path) -> None:
    folder = tmp_path / "digit"
    folder.mkdir()
    old_dir, old_file, young_dir = (
        folder / ".tmp-dead",
        folder / ".tmp-dead.json",
        folder / ".tmp-live",
    )
    old_dir.mkdir()
    (old_dir / "saved_model.pb").write_bytes(b"half")
    old_file.write_text("{}")
    young_dir.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in (old_dir, old_file):
        os.utime(path, (two_days_ago, two_days_ago))
    _write(tmp_path)
    assert not old_dir.exists()
    assert not old_file.exists()
    assert young_dir.is_dir()  # may belong to a writer that is still exporting


def test_pins_round_trip_and_are_removed(tmp_path: Path) -> None:
    assert versions.read_pin(tmp_path, "digit") is None
    versions.write_pin(tmp_path, "digit", 3)
    assert versions.read_pin(tmp_path, "digit") == 3
    stored = json.loads((tmp_path / "digit" / PIN_FILE).read_text())
    assert stored["version"] == 3
    assert stored["pinned_at"] == pytest.approx(time.time(), abs=60)
    versions.write_pin(tmp_path, "digit", 1)
    assert versions.read_pin(tmp_path, "digit") == 1
    assert _temporaries(tmp_path) == []
    versions.write_pin(tmp_path, "digit", None)
    assert versions.read_pin(tmp_path, "digit") is None
    versions.write_pin(tmp_path, "digit", None)  # removing no pin is fine


@pytest.mark.parametrize(
    "content", ["not json", '{"version": true}', '{"version": "3"}', "[3]", "{}"]
)
def test_an_unreadable_pin_is_no_pin(tmp_path: Path, content: str) -> None:
    (tmp_path / "digit").mkdir()
    (tmp_path / "digit" / PIN_FILE).write_text(content)
    assert versions.read_pin(tmp_path, "digit") is None


@pytest.mark.parametrize(
    ("metadata", "promoted"),
    [
        (None, True),
        ({}, True),
        ({"promotion": {"promoted": True}}, True),
        ({"promotion": {"promoted": False}}, False),
        ({"promotion": "odd"}, True),
    ],
)
def test_is_promoted(metadata: dict[str, Any] | None, promoted: bool) -> None:
    assert versions.is_promoted(metadata) is promoted


def test_read_metadata_of_broken_files_is_none(tmp_path: Path) -> None:
    assert versions.read_metadata(tmp_path) is None
    (tmp_path / METADATA_FILE).write_text("{truncated")
    assert versions.read_metadata(tmp_path) is None
    (tmp_path / METADATA_FILE).write_text("[1, 2]")
    assert versions.read_metadata(tmp_path) is None


@pytest.fixture
def mixed_versions(tmp_path: Path) -> Path:
    """1 promoted, 2 promoted, 3 held back, 4 dropped in by hand (no metadata), 5 held back."""
    _add_version(tmp_path, 1, {"promotion": {"promoted": True}})
    _add_version(tmp_path, 2, {"promotion": {"promoted": True}})
    _add_version(tmp_path, 3, {"promotion": {"promoted": False}})
    _add_version(tmp_path, 4, None)
    _add_version(tmp_path, 5, {"promotion": {"promoted": False}})
    return tmp_path


def test_candidates_are_promoted_versions_newest_first(mixed_versions: Path) -> None:
    assert versions.serving_candidates(mixed_versions, "digit") == [4, 2, 1]
    assert versions.served_version(mixed_versions, "digit") == 4


def test_the_settings_pin_wins_over_promotion(mixed_versions: Path) -> None:
    assert versions.serving_candidates(mixed_versions, "digit", settings_pin=3) == [3]
    assert versions.served_version(mixed_versions, "digit", settings_pin=1) == 1


def test_the_api_pin_wins_over_the_settings_pin(mixed_versions: Path) -> None:
    versions.write_pin(mixed_versions, "digit", 2)
    assert versions.serving_candidates(mixed_versions, "digit", settings_pin=1) == [2]
    versions.write_pin(mixed_versions, "digit", None)
    assert versions.served_version(mixed_versions, "digit", settings_pin=1) == 1


def test_nothing_to_serve(tmp_path: Path) -> None:
    assert versions.served_version(tmp_path, "mpg") is None
    _add_version(tmp_path, 1, {"promotion": {"promoted": False}}, name="mpg")
    assert versions.serving_candidates(tmp_path, "mpg") == []
    assert versions.served_version(tmp_path, "mpg") is None
