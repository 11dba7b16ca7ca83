"""The security properties SECURITY.md promises that tests/jobs/test_jobs_api.py (401/403 on
every admin route, loopback-only without a token, production refusing placeholder tokens) does
not already check: the token is compared in constant time and never written anywhere, CORS is
closed unless configured, and an unexpected error shows no internals."""

from __future__ import annotations

import hmac
import io
import logging
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http import security
from service.logs import JsonFormatter
from service.usecases import mpg
from tests.conftest import BASE_URL, LOOPBACK_CLIENT, REMOTE_CLIENT
from tests.interop.conftest import serve
from tests.service.test_bad_input import GOOD_CAR

TOKEN = "tok-" + "7f3c9a1e5b2d4c6e8a0f1b3d5e7c9a2b"
JOB = {"model": "mpg", "hyperparameters": {"epochs": 1}, "promote": "never"}


def test_the_token_is_compared_in_constant_time(
    client_factory, settings_factory, models_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return compare_digest(given, expected)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    client = client_factory(settings_factory(models_dir=models_dir, admin_token=TOKEN))
    for token in ("wrong", TOKEN[:-1], TOKEN + "x", TOKEN):
        client.post("/jobs", json=JOB, headers={"Authorization": f"Bearer {token}"})
    assert [given for given, _ in compared] == [
        b"wrong",
        TOKEN[:-1].encode(),
        (TOKEN + "x").encode(),
        TOKEN.encode(),
    ]
    assert {expected for _, expected in compared} == {TOKEN.encode()}


def test_the_token_is_never_logged_or_published(
    client_factory, settings_factory, models_dir
) -> None:
    """Every record of a session of admin calls (right, wrong, malformed tokens), formatted as
    the service formats them, at DEBUG, holds no trace of the token."""
    settings = settings_factory(models_dir=models_dir, admin_token=TOKEN, log_level="DEBUG")
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        client = client_factory(settings, client=REMOTE_CLIENT)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        job = client.post("/jobs", json=JOB, headers=headers).json()["id"]
        for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer  {TOKEN[:8]}"):
            assert client.post(
                "/jobs", json=JOB, headers={"Authorization": header}
            ).status_code in (
                401,
                403,
            )
        client.post(f"/jobs/{job}/cancel", headers=headers)
        client.put("/models/mpg/served-version", json={"version": 1}, headers=headers)
        public = [
            client.get("/metrics").text,
            client.get("/openapi.json").text,
            client.get("/models").text,
            client.get(f"/jobs/{job}").text,
            repr(settings),
            str(settings.model_dump()),
        ]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    logged = lines.getvalue()
    assert "/jobs" in logged  # the access log did record the calls
    for text in (logged, *public):
        assert TOKEN not in text and TOKEN[4:20] not in text


def test_cors_is_closed_unless_configured(client_factory, settings_factory, models_dir) -> None:
    preflight = {
        "Origin": "https://elsewhere.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    closed = client_factory(settings_factory(models_dir=models_dir))
    response = closed.options("/jobs", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    simple = closed.post("/mpg", json=GOOD_CAR, headers={"Origin": "https://elsewhere.example"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers

    opened = client_factory(
        settings_factory(models_dir=models_dir, cors_origins="https://app.example")
    )
    allowed = opened.options("/jobs", headers={**preflight, "Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    refused = opened.options("/jobs", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
    assert refused.status_code == 400 and refused.json()["code"] == "cors_refused"
    assert (
        "origin" in refused.json()["error"] and "PERCEPTRON_CORS_ORIGINS" in refused.json()["error"]
    )
    refused_simple = opened.post(
        "/mpg", json=GOOD_CAR, headers={"Origin": "https://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in refused_simple.headers


def test_an_unexpected_error_shows_no_internals(
    settings_factory, models_dir, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """500 with a generic message and the request id; the traceback goes to the log, under
    that same id."""

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("internal detail: /srv/secret/path")

    monkeypatch.setattr(mpg, "warnings_for", broken)
    app = create_app(settings_factory(models_dir=models_dir))
    with TestClient(
        app, base_url=BASE_URL, client=LOOPBACK_CLIENT, raise_server_exceptions=False
    ) as client:
        response = client.post("/mpg", json=GOOD_CAR)
        assert response.status_code == 500
        body = response.json()
        assert body["code"] == "internal_error" and "request id" in body["error"]
        assert body["request_id"] == response.headers["x-request-id"]
        for leak in ("Traceback", 'File "', "RuntimeError", "/srv/secret"):
            assert leak not in response.text
        logged = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
        assert [getattr(r, "request_id", None) for r in logged] == [body["request_id"]]
        assert logged[0].exc_info and "/srv/secret" in str(logged[0].exc_info[1])
        assert client.get("/readyz").status_code == 200


def test_clients_forwarded_by_a_local_proxy_are_not_loopback(
    tiny_models: Path, tmp_path: Path
) -> None:
    """Behind a reverse proxy on the same host, every connection comes from 127.0.0.1; the
    proxy's X-Forwarded-For is what tells uvicorn the real client, so a remote client still
    cannot administer a service that has no token."""
    shutil.copytree(tiny_models, tmp_path / "models")
    with serve(tmp_path / "models", tmp_path / "var") as live:
        forwarded = httpx.post(
            f"{live.url}/jobs", json=JOB, headers={"X-Forwarded-For": "203.0.113.7"}
        )
        assert forwarded.status_code == 403 and "loopback" in forwarded.json()["error"]
        local = httpx.post(f"{live.url}/jobs", json=JOB)
        assert local.status_code == 202, local.text
