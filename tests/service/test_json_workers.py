"""Large JSON bodies are parsed in a worker process (service/http/json_workers.py): the event loop
answers other requests meanwhile, errors raised there reach the client as they would inline, a
worker that dies costs the body it held a 503 and nothing more, and no worker outlives its app
or its idle time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.errors import Overloaded
from service.http import json_workers
from service.http.json_workers import JsonWorkers
from tests.conftest import BASE_URL, LOOPBACK_CLIENT
from tests.service.test_bad_input import GOOD_CAR, assert_error

JSON = {"content-type": "application/json"}
LONG_PIXEL = 0.1234567890123456
"""A pixel value written with many digits: 256 images of them make a 4 MB body, as costly to
parse as the value cap lets a /v1 body be."""


def heavy_instances(rows: int = 256) -> bytes:
    return json.dumps({"instances": [[[LONG_PIXEL] * 28] * 28] * rows}).encode()


def worker_pids() -> set[int]:
    """This process's JSON workers: its children running multiprocessing's spawn entry point."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "multiprocessing.spawn" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def wait_for(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def worker_client(settings_factory, models_dir) -> Iterator[TestClient]:
    """An app that parses every JSON body in its worker; checks that stopping it leaves no
    worker behind."""
    before = worker_pids()
    app = create_app(settings_factory(models_dir=models_dir, json_inline_bytes=0))
    with TestClient(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as client:
        yield client
    assert not (worker_pids() - before), "a JSON worker outlived its app"


def test_a_large_body_is_parsed_off_the_event_loop(client) -> None:
    workers: JsonWorkers = client.app.state.serving.json_workers
    assert len(heavy_instances()) > workers.inline_bytes
    post = client.post("/v1/models/digit:predict", content=heavy_instances(), headers=JSON)
    assert post.status_code == 200, post.text  # the worker is started and warm
    with ThreadPoolExecutor(1) as pool:
        big = pool.submit(
            client.post, "/v1/models/digit:predict", content=heavy_instances(), headers=JSON
        )
        wait_for(lambda: workers.busy > 0 or big.done())
        # The test client runs both requests on the app's one event loop: /healthz is answered
        # while the body is still being parsed, which a parse on the loop would not allow.
        health = client.get("/healthz")
        still_parsing = workers.busy > 0
        assert health.status_code == 200
        assert still_parsing, "the large body was done before /healthz was answered"
        answer = big.result()
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 256


def test_small_bodies_stay_on_the_loop(client) -> None:
    workers: JsonWorkers = client.app.state.serving.json_workers
    before = worker_pids()
    assert client.post("/mpg", json=GOOD_CAR).status_code == 200
    assert not workers.running
    assert worker_pids() == before


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "fragment"),
    [
        ("/v1/models/digit:predict", b'{"instances": [1, 2', 400, "bad_request", "not valid JSON"),
        ("/v1/models/digit:predict", b'{"instances": [NaN]}', 400, "bad_request", "NaN"),
        ("/v1/models/digit:predict", b'{"instances": [[1], [1, 2]]}', 400, "bad_request", ""),
        ("/v2/models/digit/infer", b'{"inputs": 3}', 400, "bad_request", "inputs"),
        ("/mpg", json.dumps([{**GOOD_CAR, "cylinders": "x"}]).encode(), 422, "invalid_input", ""),
        ("/digit", b'{"pixels": [[300]]}', 422, "invalid_input", "0..255"),
        ("/digit/feedback", b"[]", 422, "invalid_input", "one JSON object"),
    ],
)
def test_errors_raised_in_the_worker_reach_the_client(
    worker_client, path: str, body: bytes, status: int, code: str, fragment: str
) -> None:
    assert_error(worker_client.post(path, content=body, headers=JSON), status, code, fragment)
    assert worker_client.app.state.serving.json_workers.running


STROKE_ROW = [0.0] * 12 + [1.0] * 4 + [0.0] * 12
"""A row of a 28x28 picture of an upright stroke (a 1)."""


def test_answers_from_the_worker_match_answers_from_the_loop(
    worker_client, client, settings_factory
) -> None:
    cars = [GOOD_CAR, {**GOOD_CAR, "weight": 3500.0}]
    for path, document in [
        ("/mpg", cars),
        ("/v1/models/digit:predict", {"instances": [[[0.5] * 28] * 28] * 2}),
        ("/digit", {"pixels": [[0.0] * 28] * 4 + [STROKE_ROW] * 20 + [[0.0] * 28] * 4}),
    ]:
        from_worker = worker_client.post(path, json=document)
        on_loop = client.post(path, json=document)
        assert from_worker.status_code == on_loop.status_code == 200, from_worker.text
        assert from_worker.json() == on_loop.json()
    assert worker_client.app.state.serving.json_workers.running
    assert not client.app.state.serving.json_workers.running


def test_a_worker_that_died_idle_is_replaced_for_the_next_body(worker_client) -> None:
    others = worker_pids()  # an earlier test's worker may still be on its way out
    assert worker_client.post("/mpg", json=[GOOD_CAR]).status_code == 200
    (pid,) = worker_pids() - others
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    answer = worker_client.post("/mpg", json=[GOOD_CAR])
    assert answer.status_code == 200, answer.text
    assert worker_pids() and pid not in worker_pids()


def _die(document: Any) -> Any:
    """A conversion that kills its worker, as the kernel's out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def _echo(document: Any) -> Any:
    return document


def test_a_worker_killed_mid_parse_costs_that_body_a_503_and_the_next_body_works() -> None:
    async def scenario() -> tuple[Overloaded, Any]:
        workers = JsonWorkers(inline_bytes=0)
        try:
            with pytest.raises(Overloaded) as refused:
                await workers.parse(b'{"a": 1}', _die)
            return refused.value, await workers.parse(b'{"a": [1, 2]}', _echo)
        finally:
            workers.close()

    refused, echoed = asyncio.run(scenario())
    assert refused.status == 503 and refused.headers == {"Retry-After": "1"}
    assert "retry" in refused.message
    assert echoed == {"a": [1, 2]}


def test_an_idle_worker_is_retired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_workers, "IDLE_S", 0.2)
    before = worker_pids()

    async def scenario() -> tuple[bool, bool]:
        workers = JsonWorkers(inline_bytes=0)
        try:
            assert await workers.parse(b"[1]", _echo) == [1]
            held = workers.running
            await asyncio.sleep(0.5)
            return held, workers.running
        finally:
            workers.close()

    held, still_held = asyncio.run(scenario())
    assert held and not still_held
    wait_for(lambda: not (worker_pids() - before))  # it exits on its own, seconds later


def test_bodies_past_the_queue_limit_are_shed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_workers, "QUEUE_LIMIT", 2)

    async def scenario() -> list[Any]:
        workers = JsonWorkers(inline_bytes=0)
        try:
            calls = [workers.parse(b"[1]", _echo) for _ in range(4)]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            workers.close()

    results = asyncio.run(scenario())
    assert results[:2] == [[1], [1]]
    assert all(isinstance(result, Overloaded) for result in results[2:])
    assert "Retry-After" in results[2].headers
