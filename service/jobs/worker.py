"""`python -m service worker`: a Huey consumer that runs training jobs one at a time.

Each job runs in a fresh worker process (Huey recycles the process after every task), so
TensorFlow's memory and global state never carry from one job to the next, and a crash takes
down one job, not the consumer. A killed worker process is replaced by the consumer within
`HEALTH_CHECK_INTERVAL_S`, and its job is failed as "worker lost".
"""

from __future__ import annotations

import logging
from typing import Any

from huey.consumer import Consumer

from service.jobs.queue import build_queue
from service.jobs.store import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)

HEALTH_CHECK_INTERVAL_S = 2
MAX_POLL_DELAY_S = 1.0


def run_worker(settings: Settings) -> None:
    store = JobStore(settings.job_database_url)
    lost = store.fail_lost(settings.job_lost_after_s)
    if lost:
        log.warning("failed %d job(s) left running by a lost worker", len(lost))
    store.close()  # the consumer forks; connections must not cross into the children

    queue = build_queue(settings)
    consumer = RecyclingConsumer(
        queue.huey,
        workers=1,
        worker_type="process",
        periodic=False,
        check_worker_health=True,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        max_tasks=1,
        max_delay=MAX_POLL_DELAY_S,
    )
    log.info(
        "training worker consuming %s",
        (settings.redis_url and "Redis") or f"SQLite queue {settings.queue_path}",
    )
    consumer.run()


class RecyclingConsumer(Consumer):  # type: ignore[misc]
    """Huey's consumer, except that a worker process that exited by itself after its job
    (max_tasks=1: the recycling above) is replaced with an INFO line; Huey logs every
    replacement as "Worker 1 died, restarting." at WARNING. A worker that really died (a
    signal, a crash: a non-zero exit code) still gets the warning."""

    def check_worker_health(self) -> bool:
        workers: list[tuple[Any, Any]] = []
        replaced = False
        current: list[tuple[Any, Any]] = getattr(self, "worker_threads")  # noqa: B009 - untyped Huey
        for index, (worker, process) in enumerate(current):
            if not self.environment.is_alive(process):
                exit_code = getattr(process, "exitcode", None)
                if exit_code == 0:
                    log.info("worker process %d recycled after its job", index + 1)
                else:
                    log.warning(
                        "worker process %d died (exit code %s), restarting", index + 1, exit_code
                    )
                worker = self._create_worker()
                process = self._create_process(worker, f"Worker-{index + 1}")
                process.start()
                replaced = True
            workers.append((worker, process))
        if replaced:
            self.worker_threads = workers
        scheduler: Any = getattr(self, "scheduler")  # noqa: B009 - untyped Huey
        if not self.environment.is_alive(scheduler):
            log.warning("the queue scheduler died, restarting")
            self.scheduler = self._create_process(self._create_scheduler(), "Scheduler")
            self.scheduler.start()
        return not replaced
