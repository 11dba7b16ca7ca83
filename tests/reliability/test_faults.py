"""Faults: a locked job database, a full disk during export, the API killed and restarted
during a job, versions swapped under 64 concurrent clients and under a slow upload, the app's
lifespan run twice. After each: no half-written version served, every job in a final state
with a message, predictions from the last good version, no failed request.

Covered elsewhere and not repeated: a worker killed mid-training
(tests/jobs/test_jobs_e2e.py::test_a_killed_worker_fails_its_job_and_the_queue_goes_on), a
version missing its variables, a broken and a half-copied version folder
(tests/service/test_registry.py), an export that fails halfway (tests/training/test_versions.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs import runner
from service.jobs.runner import run_job
from service.jobs.store import JobStore
from tests.conftest import BASE_URL, LOOPBACK_CLIENT, REPO
from tests.interop.conftest import LiveServer, serve
from tests.reliability.conftest import assert_healthy
from tests.service.test_bad_input import GOOD_CAR
from tests.service.test_registry import add_version, rescan, served
from training import export, versions

MPG_JOB = {"model": "mpg", "hyperparameters": {"epochs": 5, "ensemble_size": 1}}
PIXELS = {"pixels": [[0, 0, 1, 1, 0, 0]] * 8}


# -- the job database ------------------------------------------------------------------------


def test_a_job_database_locked_by_another_writer(client) -> None:
    """Writes wait for the lock (SQLite's busy timeout), then answer 503 with Retry-After;
    reads and predictions go on meanwhile; once the lock is gone, writes work again."""
    database = client.app.state.settings.job_database_url.removeprefix("sqlite:///")
    queued = client.post("/jobs", json=MPG_JOB).json()["id"]
    other_writer = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other_writer.execute("BEGIN IMMEDIATE")  # holds the write lock
        assert client.get("/jobs").json()["total"] == 1
        assert client.get(f"/jobs/{queued}").json()["status"] == "queued"
        assert_healthy(client)
        refused = client.post("/jobs", json=MPG_JOB)
        assert refused.status_code == 503, refused.text
        assert "locked by another writer" in refused.json()["error"]
        assert refused.headers["retry-after"] == "1"
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    assert client.get("/jobs").json()["total"] == 1  # the refused job left nothing behind
    assert client.post("/jobs", json=MPG_JOB).status_code == 202
    assert client.post(f"/jobs/{queued}/cancel").json()["status"] == "cancelled"


# -- a full disk during export ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.data
def test_a_full_disk_during_export_fails_the_job_and_keeps_the_last_version(
    client, models_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The SavedModel writer hits ENOSPC halfway through the variables (injected: TensorFlow
    writes through its own C++ file system, which no Python-level full disk reaches reliably).
    The job fails saying so; no version 2 and no temporary folder is left; version 1 serves."""
    real_write = export.write_saved_model

    def write_until_the_disk_is_full(model: Any, name: str, folder: Path) -> None:
        real_write(model, name, folder)
        data = next(folder.glob("variables/variables.data-*"))
        with data.open("r+b") as handle:
            handle.truncate(data.stat().st_size // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(data))

    monkeypatch.setattr(export, "write_saved_model", write_until_the_disk_is_full)
    job_id = client.post("/jobs", json={**MPG_JOB, "promote": "always"}).json()["id"]
    settings = client.app.state.settings
    store = JobStore(settings.job_database_url)
    try:
        run_job(job_id, settings, store)  # what the worker process runs
    finally:
        store.close()
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["finished_at"]
    # The public record says it failed in stable words; what failed is in the worker's log.
    assert job["error"] == runner.UNEXPECTED_FAILURE and job["version"] is None
    assert "No space left on device" in caplog.text
    assert versions.list_versions(models_dir, "mpg") == [1]
    assert list((models_dir / "mpg").glob(".tmp-*")) == []
    for _ in range(2):  # settled: a version 2 on disk would be loaded by now
        rescan(client, "mpg")
    assert served(client, "mpg") == 1
    assert client.post("/mpg", json=GOOD_CAR).json()["model_version"] == 1


# -- the API killed during a job -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """`python -m service api` and `python -m service worker` as separate processes (the
    compose deployment), sharing a state folder."""

    def __init__(self, models_dir: Path, state: Path, data_paths: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = state / "processes.log"
        state.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PERCEPTRON_HOST": "127.0.0.1",
            "PERCEPTRON_PORT": str(self.port),
            "PERCEPTRON_MODELS_DIR": str(models_dir),
            "PERCEPTRON_STATE_DIR": str(state),
            "PERCEPTRON_CACHE_DIR": str(data_paths.cache_dir),
            "PERCEPTRON_POLL_INTERVAL_S": "0.5",
            "PERCEPTRON_JOB_HEARTBEAT_S": "1",
            "PERCEPTRON_JOB_LOST_AFTER_S": "20",
            "PERCEPTRON_LOG_JSON": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        if data_paths.data_dir:
            self.env["DATA_DIR"] = str(data_paths.data_dir)
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "service", command],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def start_api(self) -> subprocess.Popen[bytes]:
        api = self.start("api")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert api.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return api
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the API did not start\n{self.log.read_text()[-3000:]}")

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/jobs/{job_id}", timeout=10).json())

    def wait(self, job_id: str, predicate: Any, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if predicate(job):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id}: {self.job(job_id)}\n{self.log.read_text()[-3000:]}")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@pytest.fixture
def processes(models_dir: Path, tmp_path: Path, data_paths: Any) -> Iterator[Processes]:
    running = Processes(models_dir, tmp_path / "var", data_paths)
    yield running
    running.stop_all()


@pytest.mark.slow
@pytest.mark.data
def test_the_api_killed_and_restarted_during_a_job(processes: Processes) -> None:
    """The job lives in the database and the worker, not in the API: it trains on while the
    API is down, the restarted API's lost-job monitor leaves it alone (its worker is alive),
    and its version serves once it succeeds."""
    api = processes.start_api()
    processes.start("worker")
    job = {
        "model": "mpg",
        "hyperparameters": {"epochs": 150, "ensemble_size": 1, "early_stopping_patience": 0},
        "promote": "always",
    }
    job_id = httpx.post(f"{processes.url}/jobs", json=job, timeout=10).json()["id"]
    processes.wait(job_id, lambda j: j["status"] == "running" and j["history"])
    os.killpg(api.pid, signal.SIGKILL)
    api.wait(timeout=30)
    processes.start_api()
    assert processes.job(job_id)["status"] in ("running", "succeeded")
    finished = processes.wait(job_id, lambda j: j["status"] != "running")
    assert finished["status"] == "succeeded", finished
    assert finished["version"] == 2 and finished["error"] is None
    deadline = time.monotonic() + 30
    while httpx.post(f"{processes.url}/mpg", json=GOOD_CAR).json()["model_version"] != 2:
        assert time.monotonic() < deadline, "version 2 never served"
        time.sleep(0.3)
    log = processes.log.read_text()
    assert not re.search(r"job \w+ failed", log), log[-3000:]


# -- swaps under load ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live-faults")
    shutil.copytree(tiny_models, root / "models")
    with serve(root / "models", root / "var") as server:
        yield server


def add_next_version(models_dir: Path, name: str) -> int:
    version = versions.list_versions(models_dir, name)[-1] + 1
    add_version(models_dir, name, version)
    return version


async def served_version(http: httpx.AsyncClient, name: str) -> int:
    return int((await http.get(f"/models/{name}")).json()["served_version"])


async def until(condition: Callable[[], bool], what: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within_s} s"
        await asyncio.sleep(0.05)


async def wait_served(http: httpx.AsyncClient, name: str, version: int) -> None:
    deadline = time.monotonic() + 30
    while await served_version(http, name) != version:
        assert time.monotonic() < deadline, f"{name} version {version} never served"
        await asyncio.sleep(0.1)


def test_versions_swapped_under_64_concurrent_clients(live: LiveServer) -> None:
    """New versions appear on disk, then the API pins the old one back and unpins it, while
    64 clients send /mpg, /digit and Open Inference Protocol requests without pause: every request
    succeeds, and answers come from each version in turn."""
    outcomes: Counter[int] = Counter()
    answers: dict[str, Counter[int]] = {"mpg": Counter(), "digit": Counter()}
    requests = [
        ("mpg", "/mpg", {"json": GOOD_CAR}),
        ("digit", "/digit", {"json": PIXELS}),
        ("mpg", "/v2/models/mpg/infer", {"json": _v2_car()}),
    ]

    async def client_loop(http: httpx.AsyncClient, index: int, stop: asyncio.Event) -> None:
        turn = index
        while not stop.is_set():
            name, path, body = requests[turn % len(requests)]
            turn += 1
            response = await http.post(path, **body)
            outcomes[response.status_code] += 1
            if response.status_code == 200:
                answer = response.json()
                answers[name][int(answer.get("model_version", 0))] += 1

    async def scenario() -> None:
        limits = httpx.Limits(max_connections=80)
        async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as http:
            before = {name: await served_version(http, name) for name in ("mpg", "digit")}
            stop = asyncio.Event()
            clients = [asyncio.create_task(client_loop(http, i, stop)) for i in range(64)]

            async def more_answers(name: str, version: int, count: int = 20) -> None:
                # Each step of the scenario lasts until the clients have had answers from it.
                target = answers[name][version] + count
                await until(lambda: answers[name][version] >= target, f"{name} v{version}")

            await more_answers("mpg", before["mpg"])
            new = {name: add_next_version(live.models_dir, name) for name in ("mpg", "digit")}
            for name, version in new.items():
                await wait_served(http, name, version)
                await more_answers(name, version)
            pinned = await http.put("/models/mpg/served-version", json={"version": before["mpg"]})
            assert pinned.status_code == 200, pinned.text
            await more_answers("mpg", before["mpg"])
            assert (await http.delete("/models/mpg/served-version")).status_code == 200
            await wait_served(http, "mpg", new["mpg"])
            await more_answers("mpg", new["mpg"])
            stop.set()
            await asyncio.gather(*clients)
            assert set(answers["mpg"]) >= {before["mpg"], new["mpg"]}
            assert set(answers["digit"]) >= {before["digit"], new["digit"]}

    asyncio.run(scenario())
    assert set(outcomes) == {200}, f"failed requests during the swaps: {dict(outcomes)}"
    assert outcomes[200] > 200


def _v2_car() -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP32", "data": [float(value)]}
            for name, value in GOOD_CAR.items()
            if name != "origin"
        ]
        + [{"name": "origin", "shape": [1], "datatype": "FP32", "data": [3.0]}]
    }


def test_a_request_that_outlives_its_version_is_answered_by_it(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inference request takes the served version as it starts; its body then arrives
    slowly, and meanwhile a new version replaces that one. The old version still answers it
    (it used to wait forever on the retired version's stopped queue)."""

    registry = live.app.state.registry
    taken = threading.Event()
    real_get = registry.get

    def get_and_tell(name: str, version: int | None = None) -> Any:
        model = real_get(name, version)
        taken.set()
        return model

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=live.url, timeout=20) as http:
            old = await served_version(http, "mpg")
            warm = await http.post("/v2/models/mpg/infer", json=_v2_car())
            assert warm.json()["model_version"] == str(old)  # its queue has run
            retiring = real_get("mpg").batcher
            monkeypatch.setattr(registry, "get", get_and_tell)
            swapped = asyncio.Event()
            body = httpx.Request("POST", "/", json=_v2_car()).read()

            async def slow_body() -> AsyncIterator[bytes]:
                yield body[:10]
                await swapped.wait()
                yield body[10:]

            pending = asyncio.create_task(
                http.post(
                    "/v2/models/mpg/infer",
                    content=slow_body(),
                    headers={"content-type": "application/json"},
                )
            )
            await until(taken.is_set, "the route took the served version")  # and awaits the body
            new = add_next_version(live.models_dir, "mpg")
            await wait_served(http, "mpg", new)
            await until(lambda: retiring.closing, "the old version's queue closed")
            swapped.set()
            response = await pending
            assert response.status_code == 200, response.text
            assert response.json()["model_version"] == str(old)
            fresh = await http.post("/v2/models/mpg/infer", json=_v2_car())
            assert fresh.json()["model_version"] == str(new)

    asyncio.run(scenario())


# -- the lifespan run twice ------------------------------------------------------------------


def test_an_app_restarted_in_process_loads_its_models_again(settings_factory, models_dir) -> None:
    """Stopping the app closes each version's queue; starting the same app again must load
    the models anew rather than keep serving through the closed queues."""
    app = create_app(settings_factory(models_dir=models_dir))
    for _ in range(2):
        with TestClient(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as client:
            assert_healthy(client)
            metrics = client.get("/metrics").text
    loads = re.search(
        r'perceptron_model_loads_total\{model="mpg",outcome="loaded",version="1"\} (\S+)', metrics
    )
    assert loads and float(loads.group(1)) == 2.0, metrics
