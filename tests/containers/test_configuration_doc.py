"""docs/configuration.md is the table `service.settings_doc` generates from the Settings class."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from service import settings_doc
from service.settings import Settings


def test_committed_table_matches_the_settings_class() -> None:
    committed = settings_doc.DOC_PATH.read_text(encoding="utf-8")
    assert committed == settings_doc.render(), (
        "docs/configuration.md is stale: run `python -m service.settings_doc --write`"
    )


def test_every_field_has_one_row_with_its_variables() -> None:
    rows = {row.name: row for row in settings_doc.describe_settings()}
    assert list(rows) == list(Settings.model_fields)
    assert rows["data_dir"].env_names == ("PERCEPTRON_DATA_DIR", "DATA_DIR")
    assert rows["port"].env_names == ("PERCEPTRON_PORT",)
    assert rows["port"].default == "`8000`" and rows["admin_token"].default == "unset"
    assert all(row.description for row in rows.values())


def test_check_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration\n", encoding="utf-8")
    monkeypatch.setattr(settings_doc, "DOC_PATH", stale)
    assert settings_doc.main(["--check"]) == 1
    assert settings_doc.main(["--write"]) == 0
    assert settings_doc.main(["--check"]) == 0


def test_a_field_without_a_docstring_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Undocumented(Settings):
        extra_knob: int = Field(1)

    monkeypatch.setattr(settings_doc, "Settings", Undocumented)
    with pytest.raises(ValueError, match=r"Settings\.extra_knob has no docstring"):
        settings_doc.describe_settings()


def test_every_setting_is_in_exactly_one_group() -> None:
    grouped = [row.name for _, rows in settings_doc.grouped_settings() for row in rows]
    assert sorted(grouped) == sorted(Settings.model_fields)
    titles = [group.title for group in settings_doc.GROUPS]
    assert titles == ["Serving", "Limits", "Jobs", "Storage", "Security", "Tuning"]
    page = settings_doc.render()
    assert [line for line in page.splitlines() if line.startswith("## ")] == [
        f"## {title}" for title in titles
    ]


def test_a_field_in_no_group_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Ungrouped(Settings):
        extra_knob: int = Field(1)
        """A knob that no group lists."""

    monkeypatch.setattr(settings_doc, "Settings", Ungrouped)
    with pytest.raises(ValueError, match=r"Settings\.extra_knob is in no group"):
        settings_doc.grouped_settings()
