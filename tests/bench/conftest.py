"""Bench commands run in this process, as `python -m bench` would run them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _environment_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench's main() defaults DATA_DIR in os.environ, as the Makefile does for its commands;
    undone after each test, so the rest of the session (and the services it starts) sees the
    environment it was started with, not data it was not given."""
    before = os.environ.get("DATA_DIR")
    monkeypatch.setenv("DATA_DIR", before or "")  # records the value to restore at teardown
    if before is None:
        monkeypatch.delenv("DATA_DIR")


@pytest.fixture
def bench_data(data_paths, monkeypatch: pytest.MonkeyPatch):
    """Points the bench at the session's data sets (skipping, with the reason, without them)."""
    if data_paths.data_dir is not None:
        monkeypatch.setenv("DATA_DIR", str(data_paths.data_dir))
    monkeypatch.setenv("PERCEPTRON_CACHE_DIR", str(data_paths.cache_dir))
    return data_paths
