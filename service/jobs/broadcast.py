"""Live job events for `/jobs/{id}/events`: one poll of the job database per followed job,
fanned out to every stream following it, and caps on open streams (per client and in total).

A stream catches up with one read of its own (from its Last-Event-ID), then takes what the
job's broadcaster reads; events it has already seen are skipped by id, so it neither misses
nor repeats one. A subscriber that falls too far behind is dropped: its stream ends and the
client reconnects with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

from service.database.threads import in_thread_to_the_end
from service.errors import TooManyRequests
from service.jobs.store import FINAL_STATUSES, DatabaseBusy, Event, JobStore

log = logging.getLogger(__name__)

POLL_S = 0.5
SUBSCRIBER_BACKLOG = 1000
"""Events a stream may have waiting before it is dropped as too slow."""
RETRY_AFTER_S = 5


def is_final(event: Event) -> bool:
    return event.type == "status" and event.data.get("status") in FINAL_STATUSES


@dataclass(eq=False)
class Subscription:
    """What one stream receives: events in order, then None when the feed ends."""

    job_id: str
    client: str
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG)
    )


class JobEventHub:
    def __init__(self, store: JobStore, *, max_streams: int, max_streams_per_client: int) -> None:
        self.store = store
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client
        self._subscribers: dict[str, set[Subscription]] = {}
        self._broadcasters: dict[str, asyncio.Task[None]] = {}
        self._per_client: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return sum(self._per_client.values())

    @property
    def polling_jobs(self) -> int:
        return len(self._broadcasters)

    def check_capacity(self, client: str) -> None:
        """Raises TooManyRequests (429) when `client` may not open another stream now."""
        if self.open_streams >= self.max_streams:
            raise self._refusal(
                f"{self.max_streams} event streams are open on this server "
                "(PERCEPTRON_MAX_EVENT_STREAMS)"
            )
        if self._per_client[client] >= self.max_streams_per_client:
            raise self._refusal(
                f"{self.max_streams_per_client} event streams are already open from this "
                "client (PERCEPTRON_MAX_EVENT_STREAMS_PER_CLIENT); close one"
            )

    def reserve(self, client: str) -> None:
        """Takes a stream's place for `client` now (429 over a cap), for a request that has work
        to do before it subscribes: a burst of requests then cannot all pass the caps while
        the first ones read the database. `subscribe(..., reserved=True)` or `release` ends it."""
        self.check_capacity(client)
        self._per_client[client] += 1

    def release(self, client: str) -> None:
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]

    def subscribe(
        self, job_id: str, client: str, after: int, *, reserved: bool = False
    ) -> Subscription:
        """Registers a stream for `job_id` from event id `after`; 429 over a cap, unless the
        client `reserved` its place."""
        if not reserved:
            self.reserve(client)
        subscription = Subscription(job_id, client)
        self._subscribers.setdefault(job_id, set()).add(subscription)
        if job_id not in self._broadcasters:
            self._broadcasters[job_id] = asyncio.create_task(
                self._broadcast(job_id, after), name=f"job-events-{job_id}"
            )
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.job_id)
        if subscribers is None or subscription not in subscribers:
            return
        subscribers.discard(subscription)
        self.release(subscription.client)
        if not subscribers:
            del self._subscribers[subscription.job_id]
            task = self._broadcasters.pop(subscription.job_id, None)
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        tasks = list(self._broadcasters.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _broadcast(self, job_id: str, after: int) -> None:
        try:
            while job_id in self._subscribers:
                try:
                    events = await in_thread_to_the_end(self.store.events_after, job_id, after)
                except DatabaseBusy:
                    events = []
                for event in events:
                    after = event.id
                    self._deliver(job_id, event)
                    if is_final(event):
                        self._end(job_id)
                        return
                if not events:
                    await asyncio.sleep(POLL_S)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken database must not leave streams waiting for ever
            log.warning("following the events of job %s failed", job_id, exc_info=True)
            self._end(job_id)
        finally:
            if self._broadcasters.get(job_id) is asyncio.current_task():
                del self._broadcasters[job_id]

    def _deliver(self, job_id: str, event: Event) -> None:
        for subscription in list(self._subscribers.get(job_id, ())):
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.info("dropping a slow event stream of job %s", job_id)
                self._finish(subscription)

    def _end(self, job_id: str) -> None:
        for subscription in list(self._subscribers.get(job_id, ())):
            self._finish(subscription)

    @staticmethod
    def _finish(subscription: Subscription) -> None:
        queue = subscription.queue
        while queue.full():  # make room for the end marker: the stream is ending anyway
            queue.get_nowait()
        queue.put_nowait(None)

    def _refusal(self, message: str) -> TooManyRequests:
        return TooManyRequests(message, headers={"Retry-After": str(RETRY_AFTER_S)})
