"""Samples in the job database (the same engine as the jobs: SQLite by default, PostgreSQL when
configured; the table is `SampleRow`, made by the job database's migrations). Each keeps the
28x28 image the model saw, as a PNG, and the original upload."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Delete

from service.database.tables import SampleRow, now
from training.user_samples import write_samples_npz


class SampleStatus(StrEnum):
    new = "new"
    accepted = "accepted"
    rejected = "rejected"


class SampleSource(StrEnum):
    canvas = "canvas"
    upload = "upload"
    camera = "camera"


class SampleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

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
    ) -> SampleRow:
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
        )
        with self._session() as session:
            session.add(row)
        return row

    def get(self, sample_id: str) -> SampleRow | None:
        with self._session() as session:
            row = session.get(SampleRow, sample_id)
            return row

    def page(
        self,
        *,
        status: SampleStatus | None,
        label: int | None,
        limit: int,
        offset: int,
    ) -> tuple[list[SampleRow], int]:
        """The newest samples first, and how many match in all."""
        query = select(SampleRow)
        if status is not None:
            query = query.where(SampleRow.status == status.value)
        if label is not None:
            query = query.where(SampleRow.label == label)
        with self._session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(SampleRow.created_at.desc(), SampleRow.id)
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
            row = session.get(SampleRow, sample_id)
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
