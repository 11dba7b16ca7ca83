"""The job record is defined by its table; the API's job model is read from a row."""

from __future__ import annotations

from datetime import UTC

from service.database.tables import JobRow
from service.jobs.store import JobStore
from service.schemas.jobs import Job, JobSummary

COMPUTED = {"links"}
"""Fields of the API model that are not columns."""


def test_the_api_model_has_a_field_for_every_column_and_nothing_else() -> None:
    columns = {column.key for column in JobRow.__table__.columns}
    fields = set(JobSummary.model_fields) | set(JobSummary.model_computed_fields)
    assert fields - COMPUTED == columns
    assert set(Job.model_fields) - set(JobSummary.model_fields) == {"history"}


def test_a_stored_job_reads_back_as_the_api_model(settings_factory) -> None:
    """On SQLite (which keeps no time zone) and PostgreSQL alike, times come back in UTC."""
    store = JobStore(settings_factory().job_database_url)
    try:
        created = store.create("mpg", {"epochs": 5}, "never")
        row = store.get(created.id)
    finally:
        store.close()
    assert row is not None
    job = JobSummary.model_validate(row)
    assert (job.id, job.model, job.status, job.hyperparameters) == (
        created.id,
        "mpg",
        "queued",
        {"epochs": 5},
    )
    assert job.created_at.tzinfo is not None and job.created_at.utcoffset() == UTC.utcoffset(None)
    assert job.links.events == f"/jobs/{created.id}/events"
