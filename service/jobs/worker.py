"""`python -m service worker`: a Huey consumer that runs training jobs one at a time.

Each job runs in a fresh worker process (Huey recycles the process after every task), so
TensorFlow's memory and global state never carry from one job to the next, and a crash takes
down one job, not the consumer. A killed worker process is replaced by the consumer within
`HEALTH_CHECK_INTERVAL_S`, and its job is failed as "worker lost".

SIGTERM (how Kubernetes, Docker and `run` stop a worker) and Ctrl-C hand the running job back
to the queue instead of losing it: the consumer passes SIGTERM on to the job's process, which
stops at its next batch and queues the job again (service/jobs/runner.py). A job process that
has not stopped within `worker_stop_timeout_s` is killed and its job queued again by the
consumer, so the worker exits within that time whatever the job was doing. Huey's own SIGTERM
would interrupt the job and leave it to be failed as "worker lost"; its SIGINT would wait for
the job to finish, which may take hours. SIGHUP still restarts after the job.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from typing import Any

from huey.consumer import Consumer

from service.jobs.queue import JobQueue, build_queue
from service.jobs.runner import HANDED_BACK
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
        settings,
        queue,
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
    """Huey's consumer, except that:

    * SIGTERM and SIGINT hand the running job back (see above);
    * a worker process that exited by itself after its job (max_tasks=1: the recycling above)
      is replaced with an INFO line; Huey logs every replacement as "Worker 1 died,
      restarting." at WARNING. A worker that really died (a signal, a crash: a non-zero exit
      code) still gets the warning."""

    def __init__(self, settings: Settings, queue: JobQueue, **options: Any) -> None:
        super().__init__(queue.huey, **options)
        self.settings = settings
        self.queue = queue
        self._signal_actions[signal.SIGINT] = (False, False)  # (restart, graceful): hand back
        self._signal_actions[signal.SIGTERM] = (False, False)

    def stop(self, graceful: bool = False) -> None:
        if graceful:  # SIGHUP's restart: after the job
            super().stop(graceful=True)
            return
        self.stop_flag.set()
        processes = [process for _, process in getattr(self, "worker_threads")]  # noqa: B009
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # the job process hands its job back
        deadline = time.monotonic() + self.settings.worker_stop_timeout_s
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                log.warning(
                    "the job process did not stop within %g s (PERCEPTRON_WORKER_STOP_TIMEOUT_S); "
                    "killing it and queueing its job again",
                    self.settings.worker_stop_timeout_s,
                )
                process.kill()
                process.join(5)
                self._hand_back(process.pid)
        log.info("training worker stopped")

    def _hand_back(self, pid: int) -> None:
        store = JobStore(self.settings.job_database_url)
        try:
            for job_id in store.hand_back(f"{socket.gethostname()}:{pid}", HANDED_BACK):
                self.queue.submit(job_id)
        finally:
            store.close()

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
