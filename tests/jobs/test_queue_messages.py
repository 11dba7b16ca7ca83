"""Queue messages are JSON carrying a job id; a worker never unpickles what it reads."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.jobs.messages import RefusedMessage
from service.jobs.queue import JobQueue, build_queue
from tests.conftest import REPO
from tests.jobs.conftest import backend_environment
from tests.real_servers import wait_until


@pytest.fixture
def queue_factory() -> Iterator:
    """build_queue, with every queue it built closed after the test."""
    queues: list[JobQueue] = []

    def make(settings) -> JobQueue:
        queues.append(build_queue(settings))
        return queues[-1]

    yield make
    for queue in queues:
        queue.close()


class TouchWhenUnpickled:
    """A pickle that creates `marker` when loaded: what an attacker would put in the queue."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_a_message_is_the_job_id_as_json(settings_factory, queue_factory) -> None:
    queue = queue_factory(settings_factory())
    job_id = uuid.uuid4().hex
    queue.submit(job_id)
    raw = queue.huey.storage.dequeue()
    message = json.loads(raw)
    assert set(message) == {"task_id", "job_id"} and message["job_id"] == job_id
    task = queue.huey.deserialize_task(raw)
    assert task.args == (job_id,) and not task.kwargs


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'{"job_id": "../../etc/passwd", "task_id": "1"}',
        b'{"job_id": "' + b"a" * 32 + b'", "task_id": "1", "eta": "2030-01-01"}',
        b'{"job_id": "' + b"a" * 32 + b'"}',
    ],
    ids=["text", "list", "bad-id", "extra-field", "no-task-id"],
)
def test_a_message_of_another_shape_is_refused(
    settings_factory, queue_factory, payload: bytes
) -> None:
    queue = queue_factory(settings_factory())
    queue.huey.storage.enqueue(payload, None)
    with pytest.raises(RefusedMessage):
        queue.huey.dequeue()


def test_a_pickle_in_the_queue_is_never_unpickled(
    settings_factory, queue_factory, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(TouchWhenUnpickled(marker))
    queue = queue_factory(settings_factory())
    queue.huey.storage.enqueue(payload, None)
    with pytest.raises(RefusedMessage):
        queue.huey.dequeue()
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: Huey's default serializer would have run it
    assert marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("job_backend", [{}], ids=["redis"])  # Redis is the case; once is enough
def test_a_worker_drops_a_pickle_from_redis_and_goes_on(
    settings_factory, queue_factory, redis_url: str, tmp_path: Path
) -> None:
    """A real worker on a real Redis: the forged message is consumed and dropped unexecuted,
    and the worker then takes the next (valid) message."""
    settings = settings_factory(redis_url=redis_url, state_dir=tmp_path / "var")
    queue = queue_factory(settings)
    marker = tmp_path / "pwned"
    queue.huey.storage.enqueue(pickle.dumps(TouchWhenUnpickled(marker)), None)
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        **backend_environment(settings),
        "PERCEPTRON_LOG_JSON": "false",
        "PERCEPTRON_MODELS_DIR": str(tmp_path / "models"),
    }
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "service", "worker"],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "refused a job queue message" in log.read_text(), 60, "the refusal")
        unknown_job = uuid.uuid4().hex
        queue.submit(unknown_job)
        wait_until(lambda: f"job {unknown_job} is no longer queued" in log.read_text(), 60, "it")
        assert worker.poll() is None, log.read_text()
        assert queue.pending() == 0
        assert not marker.exists()
    finally:
        os.killpg(worker.pid, 9)
        worker.wait(timeout=30)
