"""Samples in the job database (the same engine as the jobs: SQLite by default, PostgreSQL when
configured; the table is `SampleRow`, made by the job database's migrations). Each keeps the
28x28 image the model saw, as a PNG, and the original upload.

The images are read only where they are asked for (`image`, `original`, the export): a sample's
other reads leave them in the database, where reading a page of 500 would hold every original
in memory (up to 2 MiB each) for an answer of a few kilobytes. Adding a sample checks the
store's quota (`SampleQuota`) in the same transaction.

The quota bounds the disk the store takes, not only its images: with SQLite the write-ahead
log holds a second copy of every page written since the last checkpoint, and while a reader
holds an old snapshot (a listing, the other serving process) a burst of 2 MiB originals grows
it as large as the burst. So the log counts toward the quota, at least at the size it is kept
to at rest (`WAL_SIZE_LIMIT`): a store at its quota leaves the database's folder at most that
large, within a few uploads.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, defer, sessionmaker
from sqlalchemy.sql.dml import Delete

from service.database.engine import WAL_SIZE_LIMIT, sqlite_log
from service.database.tables import SampleRow, now
from service.errors import InsufficientStorage
from training.user_samples import write_samples_npz


class SampleStatus(StrEnum):
    new = "new"
    accepted = "accepted"
    rejected = "rejected"


class SampleSource(StrEnum):
    canvas = "canvas"
    upload = "upload"
    camera = "camera"


_WITHOUT_IMAGES = (
    defer(SampleRow.image_png, raiseload=True),
    defer(SampleRow.original, raiseload=True),
)
"""Loader options of every read but the images' own: touching an image then raises instead
of loading it quietly, row by row."""


@dataclass(frozen=True)
class SampleQuota:
    max_samples: int
    max_bytes: int


class SampleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._log = sqlite_log(engine)

    @property
    def log_allowance(self) -> int:
        """Bytes of the quota the database's log takes at least (SQLite's log at rest)."""
        return 0 if self._log is None else WAL_SIZE_LIMIT

    def _log_bytes(self, adding: int) -> int:
        """Bytes the quota counts for the database's log once `adding` more are written to
        it: never less than the size it is kept to at rest, so a store that fits today still
        fits after a burst."""
        if self._log is None:
            return 0
        try:
            size = self._log.stat().st_size
        except FileNotFoundError:
            size = 0
        return max(size + adding, WAL_SIZE_LIMIT)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def add(
        self,
        *,
        label: int,
        predicted: int | None,
        model_version: int | None,
        source: SampleSource,
        image_png: bytes,
        original: bytes,
        original_type: str,
        quota: SampleQuota,
    ) -> SampleRow:
        """Stores a new sample; InsufficientStorage (507) when the store would then hold more
        than the quota's samples or bytes (images and the database's log). (Two processes
        adding at the same instant may each see room for one more: the quota holds within a
        few uploads.)"""
        size = len(image_png) + len(original)
        row = SampleRow(
            id=uuid.uuid4().hex,
            label=label,
            predicted=predicted,
            model_version=model_version,
            source=source.value,
            status=SampleStatus.new.value,
            created_at=now(),
            image_png=image_png,
            original=original,
            original_type=original_type,
            size_bytes=size,
        )
        with self._session() as session:
            count, used = session.execute(
                select(func.count(), func.coalesce(func.sum(SampleRow.size_bytes), 0))
            ).one()
            log = self._log_bytes(adding=size)
            if count >= quota.max_samples or used + log + size > quota.max_bytes:
                held = f"{used / 2**20:,.1f} MiB of images"
                if log:
                    held += f" and {log / 2**20:,.1f} MiB of database log"
                raise InsufficientStorage(
                    f"the feedback store is full: {count:,} samples, {held} "
                    f"of {quota.max_bytes / 2**20:,.0f} MiB (PERCEPTRON_FEEDBACK_MAX_SAMPLES "
                    f"{quota.max_samples:,}, PERCEPTRON_FEEDBACK_MAX_BYTES); new feedback is "
                    "refused until an administrator deletes samples or the retention period "
                    "removes old ones"
                )
            session.add(row)
        return row

    def get(self, sample_id: str) -> SampleRow | None:
        """The sample's fields, without its images."""
        with self._session() as session:
            return session.get(SampleRow, sample_id, options=_WITHOUT_IMAGES)

    def image(self, sample_id: str) -> bytes | None:
        """The 28x28 PNG the model saw."""
        with self._session() as session:
            return session.scalar(select(SampleRow.image_png).where(SampleRow.id == sample_id))

    def original(self, sample_id: str) -> tuple[bytes, str] | None:
        """The original upload and its media type."""
        with self._session() as session:
            found = session.execute(
                select(SampleRow.original, SampleRow.original_type).where(SampleRow.id == sample_id)
            ).one_or_none()
            return None if found is None else (found[0], found[1])

    def usage(self) -> tuple[int, int]:
        """(samples, bytes of their images) in the store."""
        with self._session() as session:
            count, used = session.execute(
                select(func.count(), func.coalesce(func.sum(SampleRow.size_bytes), 0))
            ).one()
            return int(count), int(used)

    def page(
        self,
        *,
        status: SampleStatus | None,
        label: int | None,
        limit: int,
        offset: int,
    ) -> tuple[list[SampleRow], int]:
        """The newest samples first (without their images), and how many match in all."""
        conditions = []
        if status is not None:
            conditions.append(SampleRow.status == status.value)
        if label is not None:
            conditions.append(SampleRow.label == label)
        with self._session() as session:
            total = session.scalar(select(func.count(SampleRow.id)).where(*conditions)) or 0
            rows = session.scalars(
                select(SampleRow)
                .options(*_WITHOUT_IMAGES)
                .where(*conditions)
                .order_by(SampleRow.created_at.desc(), SampleRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return list(rows), int(total)

    def counts(self) -> dict[str, dict[int, int]]:
        """Samples per status and label."""
        query = select(SampleRow.status, SampleRow.label, func.count()).group_by(
            SampleRow.status, SampleRow.label
        )
        counts: dict[str, dict[int, int]] = {status.value: {} for status in SampleStatus}
        with self._session() as session:
            for status, label, count in session.execute(query):
                counts[status][label] = count
        return counts

    def review(
        self, sample_id: str, *, status: SampleStatus | None, label: int | None
    ) -> SampleRow | None:
        with self._session() as session:
            row = session.get(SampleRow, sample_id, options=_WITHOUT_IMAGES)
            if row is None:
                return None
            if status is not None:
                row.status = status.value
            if label is not None:
                row.label = label
            row.reviewed_at = now()
            return row

    def delete(self, sample_id: str) -> bool:
        with self._session() as session:
            return _changed(session, delete(SampleRow).where(SampleRow.id == sample_id)) > 0

    def purge(self, older_than: timedelta, *, keep_accepted: bool) -> int:
        """Deletes samples created before now - `older_than` (accepted ones too unless
        `keep_accepted`); how many went."""
        query = delete(SampleRow).where(SampleRow.created_at < now() - older_than)
        if keep_accepted:
            query = query.where(SampleRow.status != SampleStatus.accepted.value)
        with self._session() as session:
            return _changed(session, query)

    def accepted_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Accepted samples in the MNIST layout: x (N, 28, 28) uint8, white ink on black, and
        y (N,) uint8, oldest first."""
        query = (
            select(SampleRow.image_png, SampleRow.label)
            .where(SampleRow.status == SampleStatus.accepted.value)
            .order_by(SampleRow.created_at, SampleRow.id)
        )
        with self._session() as session:
            rows = session.execute(query).all()
        x = np.zeros((len(rows), 28, 28), dtype=np.uint8)
        for index, (png, _) in enumerate(rows):
            with Image.open(io.BytesIO(png)) as image:
                x[index] = np.asarray(image.convert("L"), dtype=np.uint8)
        y = np.array([label for _, label in rows], dtype=np.uint8)
        return x, y

    def export_accepted(self, target: Path | IO[bytes]) -> int:
        """Writes the accepted samples as the .npz that `GET /samples/export` answers and
        training reads (`training.user_samples`); how many were written."""
        x, y = self.accepted_arrays()
        write_samples_npz(target, x, y)
        return len(y)


def _changed(session: Session, statement: Delete) -> int:
    """Rows a DELETE removed."""
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)
