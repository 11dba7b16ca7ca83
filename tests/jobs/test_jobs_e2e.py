"""Training jobs end to end: the real app, the real Huey queue, real worker processes; on SQLite
and on PostgreSQL with Redis (tests/jobs/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.drawings import mnist_png
from tests.jobs.conftest import backend_environment

pytestmark = [pytest.mark.slow, pytest.mark.data]

JOB_TIMEOUT_S = 420
TINY_DIGIT_JOB = {
    "architecture": "mlp",
    "epochs": 1,
    "hidden_units": [32],
    "max_train_samples": 2000,
}
LONG_DIGIT_JOB = {
    "architecture": "cnn",
    "epochs": 60,
    "max_train_samples": 1500,
    "conv_filters": [8],
}


class System:
    """The API (in-process TestClient) and worker processes sharing a job database and queue."""

    def __init__(self, client, env: dict[str, str], models_dir: Path) -> None:
        self.client = client
        self.env = env
        self.models_dir = models_dir
        self.workers: list[subprocess.Popen[bytes]] = []
        self.log = Path(env["PERCEPTRON_STATE_DIR"]) / "worker.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)  # PostgreSQL and Redis make no files

    def start_worker(self) -> None:
        with self.log.open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "service", "worker"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(worker)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)

    def submit(self, model: str, hyperparameters: dict[str, Any], promote: str = "always") -> str:
        response = self.client.post(
            "/jobs", json={"model": model, "hyperparameters": hyperparameters, "promote": promote}
        )
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/jobs/{response.json()['id']}"
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.client.get(f"/jobs/{job_id}").json())

    def wait(self, job_id: str, predicate, timeout: float = JOB_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if predicate(job):
                return job
            time.sleep(0.25)
        raise AssertionError(
            f"job {job_id} stuck: {self.job(job_id)}\n{self.log.read_text()[-3000:]}"
        )

    def wait_final(self, job_id: str) -> dict[str, Any]:
        return self.wait(job_id, lambda j: j["status"] in ("succeeded", "failed", "cancelled"))

    def events(self, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Follows /jobs/{id}/events, yielding (event type, data) until the stream ends."""
        with self.client.stream("GET", f"/jobs/{job_id}/events", timeout=JOB_TIMEOUT_S) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            kind, data = "message", []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data.append(line.split(":", 1)[1].strip())
                elif not line and data:
                    yield kind, json.loads("\n".join(data))
                    kind, data = "message", []


@pytest.fixture
def system(client_factory, settings_factory, models_dir, tmp_path, data_paths) -> Iterator[System]:
    state = tmp_path / "var"
    settings = settings_factory(
        models_dir=models_dir, state_dir=state, job_heartbeat_s=1.0, job_lost_after_s=20.0
    )
    env = {
        **os.environ,
        **backend_environment(settings),
        "PERCEPTRON_MODELS_DIR": str(models_dir),
        "PERCEPTRON_CACHE_DIR": str(data_paths.cache_dir),
        "PERCEPTRON_JOB_HEARTBEAT_S": "1",
        "PERCEPTRON_JOB_LOST_AFTER_S": "20",
        "PERCEPTRON_LOG_JSON": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if data_paths.data_dir:
        env["DATA_DIR"] = str(data_paths.data_dir)
    running = System(client_factory(settings), env, models_dir)
    running.start_worker()
    yield running
    running.stop_workers()


def test_a_job_runs_live_and_its_version_serves(system: System, mnist) -> None:
    job_id = system.submit("digit", TINY_DIGIT_JOB, promote="always")
    events = list(system.events(job_id))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "job"
    statuses = [data["status"] for kind, data in events if kind == "status"]
    assert statuses == ["queued", "running", "succeeded"], events
    epochs = [data for kind, data in events if kind == "epoch"]
    assert len(epochs) == 1 and "val_loss" in epochs[0]["record"]
    job = system.job(job_id)
    assert job["version"] == 2 and job["device"] == "CPU"
    assert job["promotion"]["promoted"] is True and job["metrics"]["accuracy"] > 0.5
    assert job["history"][0]["epoch"] == 1 and job["progress"]["fraction"] == 1.0
    assert job["started_at"] and job["finished_at"]

    def served_by_digit() -> int:
        response = system.client.post(
            "/digit", files={"file": ("d.png", mnist_png(mnist.x_test[0]), "image/png")}
        )
        return int(response.json()["model_version"])

    deadline = time.monotonic() + 30
    while served_by_digit() != 2:
        assert time.monotonic() < deadline, "version 2 never served"
        time.sleep(0.2)
    listed = system.client.get("/jobs?model=digit&status=succeeded").json()
    assert listed["total"] == 1 and listed["jobs"][0]["id"] == job_id


def test_auto_promotion_refuses_a_worse_model(system: System) -> None:
    worse = {**TINY_DIGIT_JOB, "learning_rate": 1e-6, "max_train_samples": 200}
    job = system.wait_final(system.submit("digit", worse, promote="auto"))
    assert job["status"] == "succeeded"
    promotion = job["promotion"]
    assert promotion["promoted"] is False
    assert promotion["compared_with_version"] == 1
    assert "worse than version 1" in promotion["reason"]
    time.sleep(0.6)
    assert system.client.get("/models/digit").json()["served_version"] == 1


def test_cancel_a_running_and_a_queued_job(system: System) -> None:
    running = system.submit("digit", LONG_DIGIT_JOB)
    queued = system.submit("mpg", {"epochs": 5, "ensemble_size": 1})
    system.wait(running, lambda j: j["status"] == "running" and j["history"])
    cancelled_queued = system.client.post(f"/jobs/{queued}/cancel")
    assert cancelled_queued.status_code == 202
    assert cancelled_queued.json()["status"] == "cancelled"
    response = system.client.post(f"/jobs/{running}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    job = system.wait_final(running)
    assert job["status"] == "cancelled" and job["version"] is None
    assert "nothing exported" in job["error"]
    assert sorted(p.name for p in (system.models_dir / "digit").iterdir() if p.name.isdigit()) == [
        "1"
    ]
    time.sleep(3)  # the worker moves on; the cancelled job must never start
    assert system.job(queued)["started_at"] is None
    again = system.client.post(f"/jobs/{running}/cancel")
    assert again.status_code == 409


def test_a_killed_worker_fails_its_job_and_the_queue_goes_on(system: System) -> None:
    doomed = system.submit("digit", LONG_DIGIT_JOB)
    job = system.wait(doomed, lambda j: j["status"] == "running" and j["history"])
    pid = int(job["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    job = system.wait_final(doomed)
    assert job["status"] == "failed" and "worker lost" in job["error"]
    assert not [p for p in (system.models_dir / "digit").iterdir() if p.name not in ("1",)]
    after = system.wait_final(system.submit("mpg", {"epochs": 3, "ensemble_size": 1}))
    assert after["status"] == "succeeded", after


def test_a_diverging_job_fails_and_exports_nothing(system: System) -> None:
    diverging = {
        "optimizer": "sgd",
        "learning_rate": 10,
        "loss": "mse",
        "epochs": 50,
        "ensemble_size": 1,
        "early_stopping_patience": 0,
    }
    job = system.wait_final(system.submit("mpg", diverging))
    assert job["status"] == "failed"
    assert "became" in job["error"] and "learning rate" in job["error"]
    assert sorted(p.name for p in (system.models_dir / "mpg").iterdir() if p.name.isdigit()) == [
        "1"
    ]


def test_jobs_survive_an_api_restart(
    client_factory, settings_factory, models_dir, tmp_path, data_paths
) -> None:
    state = tmp_path / "var"
    settings = settings_factory(models_dir=models_dir, state_dir=state)
    first = client_factory(settings)
    job_id = first.post(
        "/jobs", json={"model": "mpg", "hyperparameters": {"epochs": 3, "ensemble_size": 1}}
    ).json()["id"]
    first.__exit__(None, None, None)  # the API goes away with the job still queued
    env = {
        **os.environ,
        **backend_environment(settings),
        "PERCEPTRON_MODELS_DIR": str(models_dir),
        "PERCEPTRON_CACHE_DIR": str(data_paths.cache_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if data_paths.data_dir:
        env["DATA_DIR"] = str(data_paths.data_dir)
    restarted = System(client_factory(settings), env, models_dir)
    assert restarted.job(job_id)["status"] == "queued"
    restarted.start_worker()
    try:
        assert restarted.wait_final(job_id)["status"] == "succeeded"
    finally:
        restarted.stop_workers()
