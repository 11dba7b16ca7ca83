"""The job database's tables: the one definition of a job record and of a feedback sample.
The API's job model is built from a `JobRow` (`service/schemas/jobs.py`, pydantic
`from_attributes`), and every change here ships with a migration in
`service/database/migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always reads back aware, in UTC: SQLite stores no zone and hands back
    naive datetimes, PostgreSQL hands back aware ones; everything stored is UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def now() -> datetime:
    """The current time as every table stores it: aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime}


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    promote: Mapped[str] = mapped_column(String(16))
    hyperparameters: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(255))
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    promotion: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    """Why the job failed, in stable words that name no file: public."""
    error_detail: Mapped[str | None] = mapped_column(Text)
    """The exception behind `error` (paths, internals): for administrators only."""


class EventRow(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class SampleRow(Base):
    """A labelled example a person sent with POST /digit/feedback (`service/samples/`)."""

    __tablename__ = "samples"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[int] = mapped_column(Integer, index=True)
    predicted: Mapped[int | None] = mapped_column(Integer)
    model_version: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    reviewed_at: Mapped[datetime | None]
    image_png: Mapped[bytes] = mapped_column(LargeBinary)
    """The 28x28 image the model saw (white ink on black, MNIST layout), as a PNG."""
    original: Mapped[bytes] = mapped_column(LargeBinary)
    original_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer, server_default="0")
    """Bytes of the two images together, what the store's quota counts."""
