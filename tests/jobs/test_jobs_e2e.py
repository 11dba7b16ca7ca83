"""Training jobs end to end: the real app, the real Huey queue, real worker processes; on SQLite
and on PostgreSQL with Redis (tests/jobs/conftest.py)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.settings import Settings
from tests.conftest import REPO
from tests.drawings import mnist_png
from tests.jobs.conftest import backend_environment
from tests.service.test_registry import rescan, version_state, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.data]

JOB_TIMEOUT_S = 420
TINY_DIGIT_JOB = {
    "architecture": "mlp",
    "epochs": 1,
    "hidden_units": [32],
    "max_train_samples": 2000,
}
USER_SAMPLES_JOB = {
    **TINY_DIGIT_JOB,
    "hidden_units": [64],  # fine-tuning keeps the served network's anyway
    "user_samples": "accepted",
    "user_samples_repeat": 10,
    "start_from": "served",
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

    def wait_logged(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"never logged {text!r}"
            time.sleep(0.2)

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
    # The job exported the version's LiteRT copy with it, and that copy serves.
    assert system.client.get("/models/digit").json()["runtime"] == "litert"
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
    wait_for(lambda: version_state(system.client, "digit", 2)["state"] is not None)
    for _ in range(2):  # settled: a promoted version 2 would be loaded by now
        rescan(system.client, "digit")
    assert version_state(system.client, "digit", 2)["state"] == "on_disk"
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
    system.wait_logged(f"job {queued} is no longer queued; skipped")  # the worker moved on
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


def test_a_stopped_worker_hands_its_job_back_to_the_next(system: System) -> None:
    """SIGTERM, as Kubernetes, Docker and `run` stop a worker: the job goes back to the queue
    within worker_stop_timeout_s, and the next worker runs it from the start."""
    job_id = system.submit("digit", LONG_DIGIT_JOB)
    first = system.wait(job_id, lambda j: j["status"] == "running" and j["history"])
    stopping = system.workers[0]
    started = time.monotonic()
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(timeout=60) == 0, system.log.read_text()[-3000:]
    took = time.monotonic() - started
    assert took < Settings(_env_file=None).worker_stop_timeout_s, f"{took:.1f} s"
    job = system.job(job_id)
    assert (job["status"], job["worker"], job["history"]) == ("queued", None, []), job
    system.wait_logged(f"job {job_id} handed back to the queue")
    system.start_worker()
    again = system.wait(job_id, lambda j: j["status"] == "running" and j["history"])
    assert again["worker"] != first["worker"]
    assert system.client.post(f"/jobs/{job_id}/cancel").status_code == 202
    assert system.wait_final(job_id)["status"] == "cancelled"
    assert sorted(p.name for p in (system.models_dir / "digit").iterdir() if p.name.isdigit()) == [
        "1"
    ]


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


def test_corrections_become_a_fine_tuned_version(system: System, mnist) -> None:
    """Feedback end to end: predict, correct, list, accept, export, fine-tune the served version
    on MNIST plus the accepted samples, read both accuracies, delete the samples."""
    client = system.client
    job = system.wait_final(system.submit("digit", USER_SAMPLES_JOB, promote="auto"))
    assert job["status"] == "failed" and "accepted samples" in job["error"]  # none accepted yet

    # Two test digits of each of 0..4: one in each pair is held out, stratified.
    rows = [int(i) for label in range(5) for i in np.flatnonzero(mnist.y_test == label)[:2]]
    sent = []
    for row in rows:
        png = mnist_png(mnist.x_test[row])
        answer = client.post("/digit", files={"file": ("d.png", png, "image/png")}).json()
        feedback = client.post(
            "/digit/feedback",
            files={"file": ("d.png", png, "image/png")},
            data={
                "label": str(mnist.y_test[row]),
                "predicted": str(answer["digit"]),
                "model_version": str(answer["model_version"]),
            },
        )
        assert feedback.status_code == 201, feedback.text
        sent.append(feedback.json()["id"])
    listed = client.get("/samples", params={"status": "new", "limit": 50}).json()
    assert listed["total"] == len(rows) and {s["id"] for s in listed["items"]} == set(sent)
    for sample_id in sent:
        reviewed = client.patch(f"/samples/{sample_id}", json={"status": "accepted"})
        assert reviewed.status_code == 200 and reviewed.json()["status"] == "accepted"
    exported = np.load(io.BytesIO(client.get("/samples/export").content))
    assert exported["x"].shape == (len(rows), 28, 28)
    assert sorted(exported["y"].tolist()) == sorted(int(mnist.y_test[r]) for r in rows)

    job = system.wait_final(system.submit("digit", USER_SAMPLES_JOB, promote="auto"))
    assert job["status"] == "succeeded", job
    metrics = job["metrics"]
    assert metrics["user_samples_count"] == 5 and metrics["user_samples_trained"] == 5
    assert metrics["user_samples_repeat"] == USER_SAMPLES_JOB["user_samples_repeat"]
    assert 0.0 <= metrics["user_samples_accuracy"] <= 1.0 and metrics["accuracy"] > 0.5
    metadata = json.loads((system.models_dir / "digit" / "2" / "metadata.json").read_text())
    assert metadata["metrics"] == metrics and metadata["started_from_version"] == 1
    assert len(metadata["data_sha256"]) == 2  # MNIST and the accepted samples
    # The served version was measured on the same held-out samples, and the rule applied.
    promotion = job["promotion"]
    served_user = promotion["compared_with_user_samples_value"]
    assert promotion["compared_with_version"] == 1 and 0.0 <= served_user <= 1.0
    expected = (
        metrics["user_samples_accuracy"] >= served_user
        and metrics["accuracy"] >= promotion["compared_with_value"] - 0.001 - 1e-9
    )
    assert promotion["promoted"] is expected and "held-out user samples" in promotion["reason"]

    for sample_id in sent:
        assert client.delete(f"/samples/{sample_id}").status_code == 204
    assert client.get("/samples").json()["total"] == 0
