"""The job queue: Huey on a SQLite file by default (nothing to install), on Redis when
`PERCEPTRON_REDIS_URL` is set so workers on several machines can share it.

Both the API (which enqueues) and the workers (which consume) build the queue with
`build_queue`, which registers the one task type: run a job by id. Messages are JSON holding
that id only (`service.jobs.messages`), never pickle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from service.jobs.messages import JobMessageSerializer
from service.jobs.store import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "perceptron-jobs"
TASK_NAME = "run_training_job"


@dataclass
class JobQueue:
    huey: Huey
    enqueue_job: Any
    """The Huey task: calling it with a job id enqueues the job."""

    def submit(self, job_id: str) -> None:
        self.enqueue_job(job_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def close(self) -> None:
        """Releases the queue's connections (Huey's Redis storage leaves its pool open)."""
        storage = self.huey.storage
        pool = getattr(storage, "pool", None)
        if pool is not None:
            pool.disconnect()
        storage.close()


def build_queue(settings: Settings, store_factory: Any = None) -> JobQueue:
    """The queue for `settings`. The task opens its own job store in the worker process
    (`store_factory(settings)` when given), never one made before the worker forked."""
    serializer = JobMessageSerializer()
    options: dict[str, Any] = {"results": False, "utc": True, "serializer": serializer}
    if settings.redis_url:
        huey: Huey = RedisHuey(QUEUE_NAME, url=settings.redis_url, **options)
    else:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(QUEUE_NAME, filename=str(settings.queue_path), timeout=10, **options)
    make_store = store_factory or (lambda s: JobStore(s.job_database_url))
    stores: dict[int, JobStore] = {}

    @huey.task(retries=0, name=TASK_NAME)
    def run_training_job(job_id: str) -> None:
        import os

        from service.jobs.runner import run_job, stop_requested_by_sigterm

        # One store per worker process: connections must not cross a fork.
        store = stores.get(os.getpid())
        if store is None:
            store = stores[os.getpid()] = make_store(settings)
        if run_job(job_id, settings, store, stop_requested_by_sigterm()):
            run_training_job(job_id)  # on the queue again, for the next free worker

    serializer.task = huey._registry.task_to_string(run_training_job.task_class)
    return JobQueue(huey=huey, enqueue_job=run_training_job)
