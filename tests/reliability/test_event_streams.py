"""Event streams: one database poll per followed job however many streams follow it, caps on
open streams per client and in total (429 with Retry-After), keep-alives and a server-side
end to every stream."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.errors import TooManyRequests
from service.jobs.broadcast import JobEventHub
from service.jobs.store import JobStore
from tests.interop.conftest import LiveServer, serve

JOB = {"model": "mpg", "hyperparameters": {"epochs": 5}, "promote": "never"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    job_store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    yield job_store
    job_store.close()


def test_one_broadcaster_feeds_every_stream_of_a_job(store: JobStore) -> None:
    job = store.create("mpg", {"epochs": 5}, "never")

    async def scenario() -> None:
        hub = JobEventHub(store, max_streams=10, max_streams_per_client=10)
        streams = [hub.subscribe(job.id, f"client-{i}", 0) for i in range(5)]
        assert hub.polling_jobs == 1 and hub.open_streams == 5
        await asyncio.to_thread(store.request_cancel, job.id)
        for stream in streams:
            received = []
            async with asyncio.timeout(10):
                while (event := await stream.queue.get()) is not None:
                    received.append((event.type, event.data.get("status")))
            assert received == [("status", "queued"), ("status", "cancelled")]
        for stream in streams:
            hub.unsubscribe(stream)
        assert hub.open_streams == 0 and hub.polling_jobs == 0
        await hub.close()

    asyncio.run(scenario())


def test_streams_are_capped_per_client_and_in_total(store: JobStore) -> None:
    job = store.create("mpg", {"epochs": 5}, "never")

    async def scenario() -> None:
        hub = JobEventHub(store, max_streams=3, max_streams_per_client=2)
        first = [hub.subscribe(job.id, "a", 0) for _ in range(2)]
        with pytest.raises(TooManyRequests, match="from this client") as per_client:
            hub.subscribe(job.id, "a", 0)
        assert per_client.value.headers == {"Retry-After": "5"}
        hub.subscribe(job.id, "b", 0)
        with pytest.raises(TooManyRequests, match="3 event streams are open"):
            hub.subscribe(job.id, "c", 0)
        hub.unsubscribe(first[0])
        hub.subscribe(job.id, "c", 0)  # a closed stream frees its place
        await hub.close()

    asyncio.run(scenario())


def test_a_reserved_place_counts_until_it_subscribes_or_is_released(store: JobStore) -> None:
    """A stream request reserves its place before reading the database, so a burst of requests
    cannot all pass the cap while the first ones are still reading."""
    job = store.create("mpg", {"epochs": 5}, "never")

    async def scenario() -> None:
        hub = JobEventHub(store, max_streams=10, max_streams_per_client=2)
        hub.reserve("a")
        hub.reserve("a")
        with pytest.raises(TooManyRequests, match="from this client"):
            hub.reserve("a")
        hub.release("a")  # the request found no job
        stream = hub.subscribe(job.id, "a", 0, reserved=True)  # takes its place over
        assert hub.open_streams == 1
        hub.reserve("a")
        with pytest.raises(TooManyRequests):
            hub.reserve("a")  # the place that subscribed still counts
        hub.unsubscribe(stream)
        hub.reserve("a")
        assert hub.open_streams == 2
        await hub.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def live(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("event-streams")
    shutil.copytree(tiny_models, root / "models")
    with serve(
        root / "models",
        root / "var",
        max_event_streams_per_client=2,
        event_stream_timeout_s=1.0,
    ) as server:
        yield server


def test_a_third_stream_from_one_client_gets_429_and_streams_end_on_their_own(
    live: LiveServer,
) -> None:
    job_id = httpx.post(f"{live.url}/jobs", json=JOB).json()["id"]  # queued, no worker
    url = f"{live.url}/jobs/{job_id}/events"
    started = time.monotonic()
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", url) as one,
        client.stream("GET", url) as two,
    ):
        # Kept: httpx closes a response when its line iterator is discarded.
        lines = [stream.iter_lines() for stream in (one, two)]
        for stream, stream_lines in zip((one, two), lines, strict=True):
            assert stream.status_code == 200
            assert next(stream_lines).startswith("event: job")
        refused = httpx.get(url, timeout=10)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        assert "PERCEPTRON_MAX_EVENT_STREAMS_PER_CLIENT" in refused.json()["error"]
        # event_stream_timeout_s (1 s): each stream ends by itself; reading to the end
        # returns instead of waiting for a job that never runs.
        for stream_lines in lines:
            rest = list(stream_lines)
            assert "event: status" in rest
    assert time.monotonic() - started < 8
    # The closed streams free their places (unsubscribed as their generators finish).
    deadline = time.monotonic() + 5
    while (again := httpx.get(url, timeout=2, headers={"Last-Event-ID": "0"})).status_code == 429:
        assert time.monotonic() < deadline, "closed streams kept their places"
    assert again.status_code == 200
    assert json.loads(again.text.split("data: ", 1)[1].split("\n", 1)[0])["status"] == "queued"


def test_past_the_cap_a_stream_is_refused_in_the_connection_layer(live: LiveServer) -> None:
    """The refusal comes before the app (no request id, which the app gives every answer), so
    a flood of stream requests costs the server little; it is still our 429 with Retry-After."""
    job_id = httpx.post(f"{live.url}/jobs", json=JOB).json()["id"]
    url = f"{live.url}/jobs/{job_id}/events"
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", url) as one,
        client.stream("GET", url) as two,
    ):
        assert one.status_code == two.status_code == 200
        refused = httpx.get(url, timeout=10)
        other_route = httpx.get(f"{live.url}/jobs/{job_id}", timeout=10)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert refused.json()["code"] == "too_many_requests"
    assert "x-request-id" not in refused.headers and refused.headers["connection"] == "close"
    assert other_route.status_code == 200 and "x-request-id" in other_route.headers
