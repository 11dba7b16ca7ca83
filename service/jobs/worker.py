"""`python -m service worker`: a Huey consumer that runs training jobs one at a time.

Each job runs in a fresh worker process (Huey recycles the process after every task), so
TensorFlow's memory and global state never carry from one job to the next, and a crash takes
down one job, not the consumer. A killed worker process is replaced by the consumer within
`HEALTH_CHECK_INTERVAL_S`, and its job is failed as "worker lost".
"""

from __future__ import annotations

import logging

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
    consumer = queue.huey.create_consumer(
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
