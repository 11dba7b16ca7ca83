"""An app that stops leaves no connection to the job database open: its background tasks'
database calls finish before the store closes (a thread left running would hold a connection
of the closed pool, which then surfaces as a ResourceWarning whenever the garbage collector
finds it, in whatever code runs then)."""

from __future__ import annotations

import gc
import sys
import warnings
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import BASE_URL, LOOPBACK_CLIENT


@pytest.fixture
def job_backend(redis_url: str) -> dict[str, str]:
    """Once, on PostgreSQL (each attempt below makes its own database) and Redis."""
    return {"redis_url": redis_url}


def test_a_stopped_app_leaves_no_postgresql_connection_behind(
    settings_factory,
    models_dir: Path,
    postgres_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unclosed: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda raised: unclosed.append(raised.exc_value))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        # A new database each time: the app migrates it, then its retention sweep reads it at
        # once, so stopping at once catches the sweep in flight (8 of 12 stops before the fix).
        for attempt in range(8):
            settings = settings_factory(
                models_dir=models_dir,
                state_dir=tmp_path / f"var{attempt}",
                database_url=str(postgres_server.new_database()),
            )
            app = create_app(settings)
            with TestClient(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as client:
                assert client.get("/healthz").status_code == 200
            gc.collect()
    assert not [e for e in unclosed if isinstance(e, ResourceWarning)], unclosed
