"""Running one training job inside a worker process.

Progress goes to the job database at most every `FLUSH_INTERVAL_S` (an MPG epoch takes
milliseconds; a digit epoch minutes), together with each finished epoch as an event, and every
flush also reads the job's cancel flag. A separate heartbeat thread keeps the job visibly alive
while an epoch runs, so a worker that dies is told apart from one that is busy.

A worker asked to stop (SIGTERM: a pod being evicted or rolled, `docker stop`) hands its job
back at the next batch: the job is queued again, to run from the start on the next free worker,
rather than lost. A job whose training has ended is finished and exported first.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from service.database.tables import JobRow
from service.jobs.store import (
    CANCELLED_RUNNING,
    DatabaseBusy,
    JobStatus,
    JobStore,
    this_worker,
)
from service.samples.store import SampleStore
from service.settings import Settings

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5


DATA_UNAVAILABLE = (
    "the worker could not read the data sets; the worker's log says where it looked, under "
    "this job's id"
)
UNEXPECTED_FAILURE = (
    "training failed unexpectedly; the worker's log has the error, under this job's id"
)


HANDED_BACK = "the worker stopped; the job was queued again and runs from the start"


class JobTimedOut(Exception):
    """Raised from inside the training loop when the job has run longer than allowed."""


class JobHandedBack(Exception):
    """Raised from inside the training loop when the worker is asked to stop."""


class JobObserver:
    """A `training.progress.ProgressObserver` that writes to the job database, stops the
    training (JobTimedOut) once it has run for `timeout_s`, and hands the job back
    (JobHandedBack) at the first check after `stop_requested` is set."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        timeout_s: float | None = None,
        stop_requested: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.timeout_s = timeout_s
        self.stop_requested = stop_requested or threading.Event()
        self._training_ended = False
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.device: str | None = None
        self.total_epochs = 0
        self.stages = 1
        self.progress: dict[str, Any] = {}
        self._epochs: list[dict[str, Any]] = []
        self._last_flush = 0.0
        self._cancelled = False

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        self.device = device
        self.total_epochs = total_epochs
        self.stages = stages
        self.progress = {"fraction": 0.0, "total_epochs": total_epochs, "stages": stages}
        self.flush(force=True)

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        self.progress = {
            "stage": record["stage"],
            "epoch": record["epoch"],
            "epochs": record["epochs"],
            "fraction": round(progress, 4),
            "eta_s": None if eta_s is None else round(eta_s, 1),
            "total_epochs": self.total_epochs,
            "stages": self.stages,
        }
        self._epochs.append({"record": record, "progress": self.progress})
        self.flush()

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        self.progress = {
            **self.progress,
            "step": step,
            "steps": steps,
            "fraction": round(progress, 4),
            "eta_s": None if eta_s is None else round(eta_s, 1),
        }
        self.flush()

    def finished(self) -> None:
        self._training_ended = True  # what is left is the export: seconds, worth finishing
        self.flush(force=True)

    def flush(self, *, force: bool = False) -> None:
        """Writes what is buffered; raises TrainingCancelled if cancellation was asked, and
        JobHandedBack if the worker is stopping while training still runs."""
        from training.progress import TrainingCancelled

        if self.stop_requested.is_set() and not self._training_ended:
            raise JobHandedBack(HANDED_BACK)
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise JobTimedOut(
                f"the job ran longer than {self.timeout_s:g} s (PERCEPTRON_JOB_TIMEOUT_S) and was "
                "stopped; nothing exported"
            )
        if not force and time.monotonic() - self._last_flush < FLUSH_INTERVAL_S:
            if self._cancelled:
                raise TrainingCancelled("cancelled on request")
            return
        try:
            self._cancelled = self.store.record_progress(
                self.job_id, progress=self.progress, device=self.device, epochs=self._epochs
            )
            self._epochs = []
        except DatabaseBusy:
            log.warning("job database busy; progress kept for the next flush")
        self._last_flush = time.monotonic()
        if self._cancelled:
            raise TrainingCancelled("cancelled on request")


class Heartbeat:
    """Touches the job's heartbeat every `interval` seconds until stopped."""

    def __init__(self, store: JobStore, job_id: str, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(store, job_id, interval), daemon=True, name="heartbeat"
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self, store: JobStore, job_id: str, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                store.heartbeat(job_id)
            except Exception:  # a missed beat is survivable; the next one may get through
                log.warning("heartbeat for job %s failed", job_id, exc_info=True)


def stop_requested_by_sigterm() -> threading.Event:
    """An event set when this process gets SIGTERM: how the worker's consumer asks the
    process running a job to hand it back (service/jobs/worker.py). Only the main thread can
    take signals; elsewhere the event is never set."""
    requested = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: requested.set())
    return requested


def run_job(
    job_id: str,
    settings: Settings,
    store: JobStore,
    stop_requested: threading.Event | None = None,
) -> bool:
    """Runs job `job_id` to a final state, or hands it back to the queue when `stop_requested`
    is set before its training ends. Never raises: every outcome is recorded. Returns whether
    the job was handed back (the caller puts it on the queue again)."""
    from training.data import DataError
    from training.progress import TrainingCancelled, TrainingDiverged
    from training.served_model import ServedModelError
    from training.user_samples import UserSamplesError

    job = store.start(job_id, this_worker())
    if job is None:
        log.info("job %s is no longer queued; skipped", job_id, extra={"job_id": job_id})
        return False
    name = job.model
    log.info("job %s started: training %s", job_id, name, extra={"job_id": job_id})
    observer = JobObserver(store, job_id, settings.job_timeout_s, stop_requested)
    try:
        exported = _train(job, settings, store, observer)
    except JobHandedBack:
        handed_back = store.hand_back(this_worker(), HANDED_BACK)
        log.info("job %s handed back to the queue", job_id, extra={"job_id": job_id})
        return job_id in handed_back
    except TrainingCancelled:
        store.finish(job_id, JobStatus.cancelled, error=CANCELLED_RUNNING)
        log.info("job %s cancelled", job_id, extra={"job_id": job_id})
        return False
    except JobTimedOut as exc:
        store.finish(job_id, JobStatus.failed, error=str(exc))
        log.warning("job %s timed out", job_id, extra={"job_id": job_id})
        return False
    # Our own words about the run, naming no file: what to change to make the job possible.
    except (TrainingDiverged, UserSamplesError, ServedModelError) as exc:
        store.finish(job_id, JobStatus.failed, error=str(exc))
        log.warning("job %s failed: %s", job_id, exc, extra={"job_id": job_id})
        return False
    # The job's error is public (GET /jobs answers anyone): the exception, which names files
    # and internals, goes to the worker's log under the job id instead.
    except DataError as exc:
        store.finish(job_id, JobStatus.failed, error=DATA_UNAVAILABLE, error_detail=_detail(exc))
        log.warning("job %s failed: %s", job_id, exc, extra={"job_id": job_id})
        return False
    except Exception as exc:
        store.finish(job_id, JobStatus.failed, error=UNEXPECTED_FAILURE, error_detail=_detail(exc))
        log.exception("job %s failed", job_id, extra={"job_id": job_id})
        return False
    _record_success(job, exported, observer, store)
    _prune(settings, name)
    return False


def _train(job: JobRow, settings: Settings, store: JobStore, observer: JobObserver) -> Any:
    """Trains and exports the job's model (a scratch folder for its samples, the heartbeat
    beating meanwhile); the training's exceptions reach `run_job`."""
    from training.hyperparameters import HYPERPARAMETERS, PromotePolicy
    from training.pipeline import DataPaths, run_training

    job_id = job.id
    with (
        Heartbeat(store, job_id, settings.job_heartbeat_s),
        tempfile.TemporaryDirectory(prefix="perceptron-job-") as scratch,
    ):
        hp = HYPERPARAMETERS[job.model].model_validate(job.hyperparameters)
        return run_training(
            job.model,
            hp,
            paths=DataPaths(
                settings.data_dir,
                settings.cache_dir,
                settings.download_data,
                _accepted_samples(store, hp, Path(scratch)),
            ),
            models_dir=settings.models_dir,
            observer=observer,
            promote=PromotePolicy(job.promote),
            command=f"POST /jobs (job {job_id})",
            settings_pin=settings.pinned_versions.get(job.model),
        )


def _record_success(job: JobRow, exported: Any, observer: JobObserver, store: JobStore) -> None:
    meta = exported.metadata
    store.finish(
        job.id,
        JobStatus.succeeded,
        version=exported.version,
        metrics=meta.get("metrics"),
        promotion=meta.get("promotion"),
        progress={**observer.progress, "fraction": 1.0, "eta_s": 0.0},
        device=meta.get("device"),
    )
    log.info(
        "job %s succeeded: %s version %d",
        job.id,
        job.model,
        exported.version,
        extra={"job_id": job.id},
    )


def _accepted_samples(store: JobStore, hp: Any, folder: Path) -> Path | None:
    """The accepted samples, exported from the job database into `folder` for training
    (which reads files, never the database), when the hyperparameters ask for them."""
    from training.hyperparameters import UserSamples
    from training.user_samples import SAMPLES_FILE

    if getattr(hp, "user_samples", UserSamples.none) is not UserSamples.accepted:
        return None
    path = folder / SAMPLES_FILE
    SampleStore(store.engine).export_accepted(path)
    return path


def _prune(settings: Settings, name: str) -> None:
    from training.versions import prune_unpromoted

    try:
        deleted = prune_unpromoted(
            settings.models_dir,
            name,
            settings.keep_unpromoted_versions,
            settings.pinned_versions.get(name),
        )
    except OSError:
        log.warning("pruning old %s versions failed", name, exc_info=True)
        return
    if deleted:
        log.info("deleted %s versions held back from promotion: %s", name, deleted)


ERROR_DETAIL_CHARS = 2000


def _detail(exc: BaseException) -> str:
    """The exception as an administrator reads it on the job (the log has the traceback)."""
    return f"{type(exc).__name__}: {exc}"[:ERROR_DETAIL_CHARS]
