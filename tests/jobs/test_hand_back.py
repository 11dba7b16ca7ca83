"""A stopping worker hands its running job back to the queue (service/jobs/store.py
`hand_back`), on both job backends: the job is queued again as if never started, its epochs
forgotten, with a status event saying why; a job someone asked to cancel is cancelled instead,
and another worker's job is left alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.jobs.store import JobStatus, JobStore

REASON = "the worker stopped; queued again"


@pytest.fixture
def store(settings_factory) -> Iterator[JobStore]:
    opened = JobStore(settings_factory().job_database_url)
    yield opened
    opened.close()


def running(store: JobStore, worker: str, epochs: int = 2) -> str:
    job = store.create("mpg", {"epochs": 5}, "never")
    assert store.start(job.id, worker) is not None
    store.record_progress(
        job.id,
        progress={"fraction": 0.4},
        device="CPU",
        epochs=[{"record": {"epoch": n}} for n in range(1, epochs + 1)],
    )
    return job.id


def test_a_running_job_goes_back_to_the_queue_without_its_epochs(store: JobStore) -> None:
    mine = running(store, "host:101")
    theirs = running(store, "host:202")
    assert store.hand_back("host:101", REASON) == [mine]
    job = store.get(mine)
    assert job is not None
    assert (job.status, job.worker, job.started_at, job.progress, job.device) == (
        "queued",
        None,
        None,
        None,
        None,
    )
    assert store.history(mine) == []
    last = store.events_after(mine, 0)[-1]
    assert (last.type, last.data) == ("status", {"status": "queued", "reason": REASON})
    assert store.count_queued() == 1
    # The job can be started again, by another worker, and another worker's job is untouched.
    assert store.start(mine, "host:303") is not None
    other = store.get(theirs)
    assert other is not None and other.status == "running" and len(store.history(theirs)) == 2


def test_a_job_asked_to_cancel_is_cancelled_not_queued_again(store: JobStore) -> None:
    job_id = running(store, "host:101")
    assert store.request_cancel(job_id) is not None
    assert store.hand_back("host:101", REASON) == []
    job = store.get(job_id)
    assert job is not None and job.status == JobStatus.cancelled.value
    assert "nothing exported" in (job.error or "")


def test_nothing_to_hand_back(store: JobStore) -> None:
    finished = running(store, "host:101")
    store.finish(finished, JobStatus.succeeded)
    assert store.hand_back("host:101", REASON) == []
    assert store.hand_back("host:999", REASON) == []
