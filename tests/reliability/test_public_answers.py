"""Answers anyone may read carry stable words and codes, never a file path or an exception's
text: a version that fails to load, a model with no version, a model call that raises and a
job that fails. The details reach the log (with the request or job id) and administrators.
The service runs on a copy of the bundled models: nothing here needs the data sets."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from service.jobs import runner
from service.jobs.runner import run_job
from service.jobs.store import JobStore
from tests.conftest import BUNDLED_MODELS
from tests.service.test_bad_input import GOOD_CAR
from training import versions

TOKEN = "public-answers-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MPG_JOB = {"model": "mpg", "hyperparameters": {"epochs": 1}, "promote": "never"}
PUBLIC_READS = (
    "/models",
    "/models/mpg",
    "/models/digit",
    "/readyz",
    "/v1/models/mpg",
    "/v1/models/mpg/versions/2",
    "/v1/models/digit",
    "/v1/models/digit/metadata",
    "/v2/health/ready",
    "/v2/models/digit",
    "/v2/models/digit/ready",
)


@pytest.fixture
def broken_models(tmp_path: Path) -> Path:
    """mpg version 1 whole and version 2 half-copied (no variables); no digit at all. Both are
    copies of the bundled mpg version, renumbered."""
    models = tmp_path / "models"
    bundled = versions.version_dir(
        BUNDLED_MODELS, "mpg", versions.served_version(BUNDLED_MODELS, "mpg") or 0
    )
    for number in (1, 2):
        target = models / "mpg" / str(number)
        shutil.copytree(bundled, target)
        metadata = json.loads((target / "metadata.json").read_text())
        (target / "metadata.json").write_text(json.dumps({**metadata, "version": number}))
    shutil.rmtree(models / "mpg" / "2" / "variables")
    return models


@pytest.fixture
def service(client_factory, settings_factory, broken_models: Path, tmp_path: Path):
    data = tmp_path / "no-data"
    data.mkdir()
    settings = settings_factory(
        models_dir=broken_models,
        admin_token=TOKEN,
        data_dir=data,
        cache_dir=tmp_path / "empty-cache",
        download_data=False,
        poll_interval_s=60,
    )
    return client_factory(settings)


def public_answers(client, extra: tuple[str, ...] = ()) -> dict[str, str]:
    answers = {path: client.get(path).text for path in (*PUBLIC_READS, *extra)}
    answers["POST /digit"] = client.post("/digit", content=b"x").text
    answers["POST /v1/models/digit:predict"] = client.post(
        "/v1/models/digit:predict", json={"instances": [[0.0]]}
    ).text
    return answers


def assert_no_leak(answers: dict[str, str], *secrets: str) -> None:
    for where, text in answers.items():
        for secret in secrets:
            assert secret not in text, f"{where} shows {secret!r}: {text[:300]}"


def test_a_version_that_fails_to_load_is_explained_to_anyone_without_internals(
    service, tmp_path: Path
) -> None:
    admin_view = service.get("/models/mpg", headers=ADMIN).json()
    failed = next(v for v in admin_view["versions"] if v["version"] == 2)
    assert failed["state"] == "failed" and failed["error_code"] == "load_failed"
    detail = failed["error_detail"]
    assert str(tmp_path) in detail, detail  # the administrator sees the path and the exception
    missing = service.get("/models/digit", headers=ADMIN).json()
    assert missing["error_code"] == "no_versions" and str(tmp_path) in missing["error_detail"]

    public = service.get("/models/mpg").json()
    public_failed = next(v for v in public["versions"] if v["version"] == 2)
    assert public_failed["error"] == "version 2 could not be loaded"
    assert public_failed["error_code"] == "load_failed" and public_failed["error_detail"] is None
    assert public["served_version"] == 1
    ready = service.get("/readyz")
    assert ready.status_code == 503 and "digit is unavailable" in ready.json()["error"]
    exception_name = detail.split(":", 1)[0]
    assert_no_leak(public_answers(service), str(tmp_path), detail, exception_name)


def test_a_failing_model_call_answers_500_without_the_exception(
    service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"kernel fault reading {tmp_path}/weights"

    def broken(inputs: object) -> object:
        raise RuntimeError(secret)

    served = service.app.state.registry.get("mpg")
    monkeypatch.setattr(served.batcher, "_run", broken)
    with caplog.at_level(logging.WARNING):
        response = service.post("/mpg", json=GOOD_CAR)
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "inference_failed" and "request id" in body["error"]
    assert_no_leak({"POST /mpg": response.text}, str(tmp_path), secret, "RuntimeError")
    logged = [r for r in caplog.records if secret in r.getMessage()]
    assert body["request_id"] in [getattr(r, "request_id", None) for r in logged]


@pytest.mark.parametrize("failure", ["no data", "unexpected"])
def test_a_failed_job_shows_stable_words_and_logs_the_cause(
    service,
    tmp_path: Path,
    failure: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = str(tmp_path / "no-data")
    if failure == "unexpected":
        secret = f"ValueError: cannot write {tmp_path}/models/mpg/.tmp-3"
        from training import pipeline

        def explode(*args: object, **kwargs: object) -> None:
            raise ValueError(secret.removeprefix("ValueError: "))

        monkeypatch.setattr(pipeline, "run_training", explode)
    job_id = service.post("/jobs", json=MPG_JOB, headers=ADMIN).json()["id"]
    settings = service.app.state.settings
    store = JobStore(settings.job_database_url)
    try:
        with caplog.at_level(logging.WARNING):
            run_job(job_id, settings, store)  # what the worker process runs
    finally:
        store.close()
    job = service.get(f"/jobs/{job_id}").json()
    expected = runner.DATA_UNAVAILABLE if failure == "no data" else runner.UNEXPECTED_FAILURE
    assert job["status"] == "failed" and job["error"] == expected
    answers = {
        "/jobs": service.get("/jobs").text,
        "/jobs/{id}": service.get(f"/jobs/{job_id}").text,
        "/jobs/{id}/events": service.get(f"/jobs/{job_id}/events").text,
    }
    assert_no_leak(answers, str(tmp_path), secret.removeprefix("ValueError: "))
    logged = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    assert any(
        secret.removeprefix("ValueError: ") in (r.getMessage() + str(r.exc_info)) for r in logged
    )
    # An administrator reads the cause on the job itself, in the list and in its detail.
    as_admin = service.get(f"/jobs/{job_id}", headers=ADMIN).json()
    assert secret.removeprefix("ValueError: ") in as_admin["error_detail"]
    listed = service.get("/jobs", headers=ADMIN).json()["jobs"]
    assert any(secret.removeprefix("ValueError: ") in (j["error_detail"] or "") for j in listed)
