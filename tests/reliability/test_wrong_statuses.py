"""Requests that once drew a wrong answer, with the status each gets: no 500 for long version
numbers or many-dimensional tensors, 422 for pixel values out of range, 400 for a multipart
body cut short, 415 for a compressed body, integers only for a pin, exactly one 202 among
concurrent cancels, and no WARNING when the worker recycles its process after a job."""

from __future__ import annotations

import gzip
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from service.jobs.store import JobStore, this_worker
from service.jobs.worker import RecyclingConsumer
from tests.service.test_bad_input import assert_error

HUGE_VERSION = "9" * 4400
JOB = {"model": "mpg", "hyperparameters": {"epochs": 5}, "promote": "never"}


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", f"/v1/models/digit/versions/{HUGE_VERSION}"),
        ("GET", f"/v1/models/digit/versions/{HUGE_VERSION}/metadata"),
        ("POST", f"/v1/models/digit/versions/{HUGE_VERSION}:predict"),
        ("GET", f"/v2/models/digit/versions/{HUGE_VERSION}"),
        ("GET", f"/v2/models/digit/versions/{HUGE_VERSION}/ready"),
        ("POST", f"/v2/models/digit/versions/{HUGE_VERSION}/infer"),
    ],
)
def test_a_4400_digit_version_is_not_found(shared_client: Any, method: str, path: str) -> None:
    response = shared_client.request(method, path, json={"instances": [], "inputs": []})
    assert_error(response, 404, "not_found", "")
    assert len(response.text) < 1000  # the version is not echoed back whole


def test_a_v2_shape_with_70_dimensions_is_a_bad_request(shared_client: Any) -> None:
    tensor = {"name": "image", "shape": [1] * 70, "datatype": "FP32", "data": [0.5]}
    response = shared_client.post("/v2/models/digit/infer", json={"inputs": [tensor]})
    assert_error(response, 400, "bad_request", "at most 32")


@pytest.mark.parametrize(
    "pixels, fragment",
    [([[-5, 1], [1, 3]], "found -5..3"), ([[1e39, 1], [1, 3]], "1e+39"), ([[0, 256]], "256")],
    ids=["negative", "overflow", "over-255"],
)
def test_pixel_values_out_of_range_are_invalid_input(
    shared_client: Any, pixels: list[list[float]], fragment: str
) -> None:
    response = shared_client.post("/digit", json={"pixels": pixels})
    assert_error(response, 422, "invalid_input", "0..1 or 0..255")
    assert fragment in response.json()["error"]


def test_a_multipart_body_without_its_closing_boundary_is_malformed(
    shared_client: Any,
) -> None:
    body = (
        b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG"
    )
    response = shared_client.post(
        "/digit", content=body, headers={"content-type": "multipart/form-data; boundary=xx"}
    )
    assert_error(response, 400, "bad_request", "closing boundary")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_refused(shared_client: Any, encoding: str) -> None:
    response = shared_client.post(
        "/mpg",
        content=gzip.compress(b'{"cylinders": 4}'),
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    assert_error(response, 415, "unsupported_media_type", "Content-Encoding")
    plain = shared_client.post(
        "/digit",
        json={"pixels": [[0, 0, 1, 1, 0, 0]] * 8},
        headers={"content-encoding": "identity"},
    )
    assert plain.status_code == 200


@pytest.mark.parametrize("version", [True, "1", 1.0])
def test_a_pin_takes_only_an_integer(shared_client: Any, version: Any) -> None:
    response = shared_client.put("/models/digit/served-version", json={"version": version})
    assert_error(response, 422, "invalid_input", "valid integer")


@pytest.mark.parametrize("running", [True, False], ids=["running", "queued"])
def test_of_100_concurrent_cancels_exactly_one_is_accepted(
    client_factory, settings_factory, models_dir, running: bool
) -> None:
    settings = settings_factory(models_dir=models_dir)
    client = client_factory(settings)
    job_id = client.post("/jobs", json=JOB).json()["id"]
    if running:
        store = JobStore(settings.job_database_url)
        assert store.start(job_id, this_worker()) is not None
        store.close()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: client.post(f"/jobs/{job_id}/cancel"), range(100)))
    codes = sorted(response.status_code for response in statuses)
    assert codes == [202] + [409] * 99
    refused = next(r for r in statuses if r.status_code == 409).json()["error"]
    assert ("asked to stop" if running else "already cancelled") in refused


class _Process:
    """Stands in for a worker process that has ended with `exitcode` (or is running)."""

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode

    def is_alive(self) -> bool:
        return self.exitcode is None

    def start(self) -> None:
        self.exitcode = None


@pytest.mark.parametrize(
    "exit_code, level, fragment",
    [(0, logging.INFO, "recycled after its job"), (-9, logging.WARNING, "died (exit code -9)")],
)
def test_a_recycled_worker_is_not_a_warning(
    settings_factory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    exit_code: int,
    level: int,
    fragment: str,
) -> None:
    from service.jobs.queue import build_queue

    settings = settings_factory()
    queue = build_queue(settings)
    consumer = RecyclingConsumer(
        settings, queue, workers=1, worker_type="process", check_worker_health=True, max_tasks=1
    )
    started: list[_Process] = []
    monkeypatch.setattr(
        consumer, "_create_process", lambda *_: started.append(_Process(0)) or started[-1]
    )
    consumer.worker_threads = [(consumer._create_worker(), _Process(exit_code))]
    consumer.scheduler = _Process(None)
    with caplog.at_level(logging.INFO, logger="service.jobs.worker"):
        assert consumer.check_worker_health() is False
    records = [r for r in caplog.records if r.name == "service.jobs.worker"]
    assert [(r.levelno, fragment in r.getMessage()) for r in records] == [(level, True)]
    assert len(started) == 1 and started[0].is_alive()  # replaced either way
