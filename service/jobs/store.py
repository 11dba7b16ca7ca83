"""Job records in a real database through SQLAlchemy: a SQLite file by default, PostgreSQL when
`PERCEPTRON_DATABASE_URL` says so. The API and the workers share it; opening it migrates it to
the newest schema (`service.database.migrate`).

Jobs are handed out as detached `JobRow`s, fully loaded: the API builds its answers from them
(`service/schemas/jobs.py`), the worker reads its job from them.

Every state change is a conditional UPDATE (`... WHERE status = 'queued'`), so a cancel racing a
worker's start, or a lost-worker sweep racing a late success, leave one clear outcome.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.database import migrate
from service.database.engine import make_engine
from service.database.tables import EventRow, JobRow, now

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


CANCELLED_RUNNING = "cancelled while running; nothing exported"
FINAL_STATUSES = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class DatabaseBusy(Exception):
    """The job database stayed locked by another writer past the timeout."""


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    type: str
    data: dict[str, Any]


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate.upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise DatabaseBusy("the job database is locked by another writer") from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # -- API side ---------------------------------------------------------------------------

    def create(self, model: str, hyperparameters: dict[str, Any], promote: str) -> JobRow:
        row = JobRow(
            id=uuid.uuid4().hex,
            model=model,
            status=JobStatus.queued.value,
            promote=promote,
            hyperparameters=hyperparameters,
            created_at=now(),
            cancel_requested=False,
        )
        with self._session() as session:
            session.add(row)
            session.flush()
            self._add_event(session, row.id, "status", _status_data(row))
        return row

    def get(self, job_id: str) -> JobRow | None:
        with self._session() as session:
            return session.get(JobRow, job_id)

    def list_jobs(
        self, *, model: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRow], int]:
        with self._session() as session:
            query = select(JobRow)
            if model:
                query = query.where(JobRow.model == model)
            if status:
                query = query.where(JobRow.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)
            )
            return list(rows), total

    def count_queued(self) -> int:
        with self._session() as session:
            query = select(func.count()).where(JobRow.status == JobStatus.queued.value)
            return session.scalar(query) or 0

    def request_cancel(self, job_id: str) -> JobRow | None:
        """Cancels a queued job at once; asks a running one to stop at its next batch. Returns
        the job when this call did so, None when the job is gone, final or already asked to
        stop (each check is part of the UPDATE, so of concurrent calls exactly one wins)."""
        with self._session() as session:
            done = _updated(
                session,
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.queued.value)
                .values(
                    status=JobStatus.cancelled.value,
                    cancel_requested=True,
                    finished_at=now(),
                    error="cancelled before it started",
                ),
            )
            if not done:
                asked = _updated(
                    session,
                    update(JobRow)
                    .where(
                        JobRow.id == job_id,
                        JobRow.status == JobStatus.running.value,
                        JobRow.cancel_requested.is_(False),
                    )
                    .values(cancel_requested=True),
                )
                if not asked:
                    return None
            return self._reread(session, job_id, status_changed=bool(done))

    def fail_queued(self, job_id: str, error: str) -> None:
        """Fails a job that could not be handed to the queue."""
        with self._session() as session:
            changed = _updated(
                session,
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.queued.value)
                .values(status=JobStatus.failed.value, finished_at=now(), error=error),
            )
            if changed:
                self._reread(session, job_id, status_changed=True)

    def events_after(self, job_id: str, after: int, limit: int = 500) -> list[Event]:
        with self._session() as session:
            rows = session.scalars(
                select(EventRow)
                .where(EventRow.job_id == job_id, EventRow.id > after)
                .order_by(EventRow.id)
                .limit(limit)
            )
            return [Event(r.id, r.job_id, r.type, r.data) for r in rows]

    def history(self, job_id: str) -> list[dict[str, Any]]:
        with self._session() as session:
            rows = session.scalars(
                select(EventRow.data)
                .where(EventRow.job_id == job_id, EventRow.type == "epoch")
                .order_by(EventRow.id)
            )
            return [dict(data.get("record", {})) for data in rows]

    def fail_lost(self, older_than_s: float) -> list[str]:
        """Fails running jobs whose worker went silent, or whose worker process on this host
        is gone. Returns their ids."""
        cutoff = now() - timedelta(seconds=older_than_s)
        host = socket.gethostname()
        lost: list[tuple[str, str]] = []
        with self._session() as session:
            running = session.scalars(
                select(JobRow).where(JobRow.status == JobStatus.running.value)
            ).all()
            for row in running:
                heartbeat = row.heartbeat_at or row.started_at
                if heartbeat is not None and heartbeat < cutoff:
                    lost.append(
                        (row.id, f"worker lost: no heartbeat since {heartbeat.isoformat()}")
                    )
                elif row.worker and _dead_local_process(row.worker, host):
                    lost.append((row.id, f"worker lost: process {row.worker} exited"))
            for job_id, reason in lost:
                self._finish(session, job_id, JobStatus.failed, error=reason)
        for job_id, reason in lost:
            log.warning("job %s failed: %s", job_id, reason, extra={"job_id": job_id})
        return [job_id for job_id, _ in lost]

    # -- worker side ------------------------------------------------------------------------

    def start(self, job_id: str, worker: str) -> JobRow | None:
        """Marks a queued job running; None when it was cancelled (or taken) meanwhile."""
        with self._session() as session:
            started = _updated(
                session,
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.queued.value)
                .values(
                    status=JobStatus.running.value,
                    started_at=now(),
                    heartbeat_at=now(),
                    worker=worker,
                ),
            )
            if not started:
                return None
            return self._reread(session, job_id, status_changed=True)

    def hand_back(self, worker: str, reason: str) -> list[str]:
        """Returns to the queue every job `worker` is running (it is stopping): queued again as
        if never started, its epochs forgotten, with a status event giving `reason`. The caller
        puts each on the job queue again. Returns their ids."""
        with self._session() as session:
            running = session.execute(
                select(JobRow.id, JobRow.cancel_requested).where(
                    JobRow.status == JobStatus.running.value, JobRow.worker == worker
                )
            ).all()
            handed_back = []
            for job_id, cancel_requested in running:
                if cancel_requested:  # nobody wants it run again
                    self._finish(session, job_id, JobStatus.cancelled, error=CANCELLED_RUNNING)
                    continue
                changed = _updated(
                    session,
                    update(JobRow)
                    .where(
                        JobRow.id == job_id,
                        JobRow.status == JobStatus.running.value,
                        JobRow.worker == worker,
                    )
                    .values(
                        status=JobStatus.queued.value,
                        started_at=None,
                        heartbeat_at=None,
                        worker=None,
                        device=None,
                        progress=None,
                    ),
                )
                if changed:
                    session.execute(
                        delete(EventRow).where(EventRow.job_id == job_id, EventRow.type == "epoch")
                    )
                    self._add_event(
                        session,
                        job_id,
                        "status",
                        {"status": JobStatus.queued.value, "reason": reason},
                    )
                    handed_back.append(job_id)
        for job_id in handed_back:
            log.info("job %s handed back: %s", job_id, reason, extra={"job_id": job_id})
        return handed_back

    def heartbeat(self, job_id: str) -> None:
        with self._session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.running.value)
                .values(heartbeat_at=now())
            )

    def record_progress(
        self,
        job_id: str,
        *,
        progress: dict[str, Any],
        device: str | None,
        epochs: list[dict[str, Any]],
    ) -> bool:
        """Stores progress and any finished epochs; returns whether cancellation was asked."""
        with self._session() as session:
            values: dict[str, Any] = {"progress": progress, "heartbeat_at": now()}
            if device:
                values["device"] = device
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.running.value)
                .values(**values)
            )
            for data in epochs:
                self._add_event(session, job_id, "epoch", data)
            row = session.get(JobRow, job_id)
            return bool(
                row is None or row.cancel_requested or row.status != JobStatus.running.value
            )

    def finish(self, job_id: str, status: JobStatus, **values: Any) -> JobRow | None:
        with self._session() as session:
            return self._finish(session, job_id, status, **values)

    def _finish(
        self, session: Session, job_id: str, status: JobStatus, **values: Any
    ) -> JobRow | None:
        changed = _updated(
            session,
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == JobStatus.running.value)
            .values(status=status.value, finished_at=now(), **values),
        )
        return self._reread(session, job_id, status_changed=bool(changed))

    def _reread(self, session: Session, job_id: str, *, status_changed: bool) -> JobRow | None:
        """The job as stored after an update, recording its new status as an event when the
        update changed it; None when there is no such job."""
        row = session.get(JobRow, job_id)
        if row is None:
            return None
        session.refresh(row)
        if status_changed:
            self._add_event(session, job_id, "status", _status_data(row))
        return row

    @staticmethod
    def _add_event(session: Session, job_id: str, kind: str, data: dict[str, Any]) -> None:
        session.add(EventRow(job_id=job_id, type=kind, data=data, created_at=now()))


def _status_data(row: JobRow) -> dict[str, Any]:
    keys = ("version", "metrics", "promotion", "error", "device")
    present = {key: value for key in keys if (value := getattr(row, key)) is not None}
    return {"status": row.status} | present


def _dead_local_process(worker: str, host: str) -> bool:
    name, _, pid_text = worker.rpartition(":")
    if name != host or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _updated(session: Session, statement: Any) -> int:
    """Executes an UPDATE and returns how many rows it changed."""
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)
