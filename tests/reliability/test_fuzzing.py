"""Schemathesis against the service's own OpenAPI schema, in process: every operation, with
schema-conforming and schema-violating requests, under the five checks below. Zero failures
means no 500s, only declared status codes and content types, responses that match their
schemas, and no request the schema forbids accepted."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from service.app import create_app
from service.settings import Settings
from tests.conftest import BASE_URL

pytestmark = pytest.mark.serial

TOKEN = "fuzz-admin-token-0123456789"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
MAX_EXAMPLES = 15
"""Per operation and phase; with the coverage phase's own cases, about 2,000 requests in all."""

# BMP and TIFF bodies are bytes like any other image; schemathesis ships no serializer for them.
schemathesis.serializer.alias(["image/bmp", "image/tiff"], "application/octet-stream")

# The schema does not depend on the settings, so the default app's describes the fuzzed one.
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())
schema.config.generation.update(modes=["positive", "negative"])


@pytest.fixture(scope="module")
def session(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An in-process client of the app on a private copy of the tiny models (lifespan run)."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(tiny_models, root / "models")
    app = create_app(
        Settings(
            _env_file=None,
            models_dir=root / "models",
            state_dir=root / "var",
            admin_token=TOKEN,
            poll_interval_s=1.0,
            log_json=False,
        )
    )
    assert app.openapi() == schema.raw_schema
    with asgi.get_client(app) as client:
        client.base_url = BASE_URL  # schemathesis's `testserver` is not a name the app answers to
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_its_schema(case, session) -> None:
    case.call_and_validate(session=session, checks=CHECKS)
