"""Fixtures of the reliability tests: an app shared by a module's tests, and what "still
healthy" means after something hostile happened to it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import BASE_URL, LOOPBACK_CLIENT
from tests.service.test_bad_input import GOOD_CAR


@pytest.fixture(scope="module")
def shared_client(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app on a private copy of the tiny models, called from loopback, for a whole module
    (loading models per test would cost more than the tests)."""
    root = tmp_path_factory.mktemp("reliability")
    shutil.copytree(tiny_models, root / "models")
    settings = Settings(
        _env_file=None,
        models_dir=root / "models",
        state_dir=root / "var",
        cache_dir=root / "cache",
        poll_interval_s=0.5,
        log_json=False,
    )
    with TestClient(create_app(settings), base_url=BASE_URL, client=LOOPBACK_CLIENT) as client:
        yield client


def assert_healthy(client: Any) -> None:
    """Ready, and both models answer a good request."""
    assert client.get("/readyz").status_code == 200
    mpg = client.post("/mpg", json=GOOD_CAR)
    assert mpg.status_code == 200, mpg.text
    digit = client.post("/digit", json={"pixels": [[0, 0, 1, 1, 0, 0]] * 8})
    assert digit.status_code == 200, digit.text


def declared_statuses(client: Any, method: str, template: str) -> set[int]:
    """The statuses the OpenAPI schema declares for `method` on the route `template`."""
    operation = client.app.openapi()["paths"][template][method.lower()]
    return {int(status) for status in operation["responses"]}
