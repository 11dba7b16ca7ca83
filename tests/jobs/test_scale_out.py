"""Several workers on one Redis queue and one PostgreSQL job database, as on several machines.

The other scale-out checks (a worker killed mid-job, the API restarted with a job queued,
/jobs listing) are the end-to-end and API tests, which run on this backend too."""

from __future__ import annotations

import pytest

from tests.jobs.test_jobs_e2e import LONG_DIGIT_JOB, System, system  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow, pytest.mark.data]


@pytest.fixture
def job_backend(postgres_url: str, redis_url: str) -> dict[str, str]:
    """PostgreSQL and Redis only: the deployment that has several workers."""
    return {"database_url": postgres_url, "redis_url": redis_url}


def test_jobs_spread_over_two_workers(system: System) -> None:  # noqa: F811 - the fixture
    system.start_worker()  # the fixture started the first
    first = system.submit("digit", LONG_DIGIT_JOB)
    second = system.submit("digit", LONG_DIGIT_JOB)
    # Each worker runs one job at a time, so both running at once means both workers took one.
    running = [
        system.wait(job, lambda j: j["status"] == "running", timeout=120) for job in (first, second)
    ]
    assert len({job["worker"] for job in running}) == 2, running
    for job in (first, second):
        assert system.client.post(f"/jobs/{job}/cancel").status_code == 202
    assert [system.wait_final(job)["status"] for job in (first, second)] == ["cancelled"] * 2
