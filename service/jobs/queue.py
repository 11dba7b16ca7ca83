"""The job queue: Huey on a SQLite file by default (nothing to install), on Redis when
`PERCEPTRON_REDIS_URL` is set so workers on several machines can share it.

Both the API (which enqueues) and the workers (which consume) build the queue with
`build_queue`, which registers the one task type: run a job by id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from service.jobs.store import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "perceptron-jobs"


@dataclass
class JobQueue:
    huey: Huey
    enqueue_job: Any
    """The Huey task: calling it with a job id enqueues the job."""

    def submit(self, job_id: str) -> None:
        self.enqueue_job(job_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())


def build_queue(settings: Settings, store_factory: Any = None) -> JobQueue:
    """The queue for `settings`. The task opens its own job store in the worker process
    (`store_factory(settings)` when given), never one made before the worker forked."""
    if settings.redis_url:
        huey: Huey = RedisHuey(QUEUE_NAME, url=settings.redis_url, results=False, utc=True)
    else:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(
            QUEUE_NAME, filename=str(settings.queue_path), results=False, utc=True, timeout=10
        )
    make_store = store_factory or (lambda s: JobStore(s.job_database_url))
    stores: dict[int, JobStore] = {}

    @huey.task(retries=0, name="run_training_job")
    def run_training_job(job_id: str) -> None:
        import os

        from service.jobs.runner import run_job

        # One store per worker process: connections must not cross a fork.
        store = stores.get(os.getpid())
        if store is None:
            store = stores[os.getpid()] = make_store(settings)
        run_job(job_id, settings, store)

    return JobQueue(huey=huey, enqueue_job=run_training_job)
