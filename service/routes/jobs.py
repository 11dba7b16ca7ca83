"""Training jobs over the API: create (admin), list, inspect, follow live, cancel (admin)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from service.database.tables import JobRow
from service.errors import (
    Conflict,
    InvalidInput,
    ModelUnavailable,
    NoContent,
    NotFound,
    ServiceError,
    TooManyRequests,
)
from service.http.connections import Gatekeeper
from service.http.deps import AdminAccess, IsAdmin, SettingsDep
from service.http.error_handlers import error_responses
from service.jobs.broadcast import JobEventHub, Subscription, is_final
from service.jobs.queue import JobQueue
from service.jobs.store import FINAL_STATUSES, DatabaseBusy, Event, JobStatus, JobStore
from service.schemas.jobs import (
    JOB_REQUEST_EXAMPLES,
    Job,
    JobList,
    JobRequest,
    JobSummary,
)
from service.settings import Settings
from training.cost import estimate_cost, estimate_memory
from training.hyperparameters import MODEL_NAMES

router = APIRouter(prefix="/jobs", tags=["jobs"])

RECONNECT_MS = 2000
JobId = Annotated[str, Path(description="Job id", min_length=1, max_length=64)]


async def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.job_store
    return store


async def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.job_queue
    return queue


async def get_event_hub(request: Request) -> JobEventHub:
    hub: JobEventHub = request.app.state.event_hub
    return hub


StoreDep = Annotated[JobStore, Depends(get_store)]
EventHubDep = Annotated[JobEventHub, Depends(get_event_hub)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]


def _detail(job: JobRow, store: JobStore, *, admin: bool) -> Job:
    detailed = Job.model_validate(job).model_copy(update={"history": store.history(job.id)})
    return detailed if admin else _public(detailed)


Answer = TypeVar("Answer", bound=JobSummary)


def _public(job: Answer) -> Answer:
    """The job as anyone may read it: without the exception behind its error."""
    return job.model_copy(update={"error_detail": None}) if job.error_detail else job


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _busy(exc: DatabaseBusy) -> ModelUnavailable:
    return ModelUnavailable(f"{exc}; retry shortly", headers={"Retry-After": "1"})


def _refuse_costly(body: JobRequest, settings: Settings) -> None:
    """422 for a job estimated to run or to need memory beyond the settings' limits."""
    cost = estimate_cost(body.model, body.hyperparameters)
    if cost.seconds > settings.max_job_cost_s:
        raise InvalidInput(
            f"this job is estimated to run {_duration(cost.seconds)} ({cost.steps:,} steps of "
            f"{cost.macs_per_sample:,} multiply-adds per sample) on the reference machine; "
            f"the limit is {_duration(settings.max_job_cost_s)} (PERCEPTRON_MAX_JOB_COST_S): "
            "use fewer epochs, a larger batch or a smaller model"
        )
    memory = estimate_memory(body.hyperparameters)
    if memory.step_bytes > settings.max_job_memory_bytes:
        raise InvalidInput(
            f"this job is estimated to need {_size(memory.step_bytes)} of memory to train "
            f"({memory.parameters:,} parameters; {memory.activations_per_sample:,} values "
            f"kept per sample, times a batch of {body.hyperparameters.batch_size:,}); the "
            f"limit is {_size(settings.max_job_memory_bytes)} (PERCEPTRON_MAX_JOB_MEMORY_BYTES)"
            ": use a smaller batch or fewer filters and units"
        )


def _size(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB" if count >= 2**30 else f"{count / 2**20:,.0f} MiB"


def existing_job(job_id: JobId, store: StoreDep) -> JobRow:
    try:
        job = store.get(job_id)
    except DatabaseBusy as exc:
        raise _busy(exc) from None
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


ExistingJob = Annotated[JobRow, Depends(existing_job)]


@router.post(
    "",
    status_code=202,
    summary="Start a training job",
    dependencies=[AdminAccess],
    responses=error_responses(400, 401, 403, 415, 422, 429, 503),
)
def create_job(
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    queue: QueueDep,
    body: Annotated[JobRequest, Body(openapi_examples=JOB_REQUEST_EXAMPLES)],
) -> Job:
    """Queues a training job for `model` with `hyperparameters` (exactly the options of
    `python -m training <model>`). A worker process trains it, exports a new version and
    promotes it according to `promote`. Follow it at `/jobs/{id}/events`. A job whose
    estimated run time exceeds `max_job_cost_s`, or whose estimated memory exceeds
    `max_job_memory_bytes`, is refused with 422."""
    _refuse_costly(body, settings)
    try:
        if store.count_queued() >= settings.queue_max_pending:
            raise TooManyRequests(
                f"{settings.queue_max_pending} jobs are already queued; wait for some to "
                "finish or cancel one",
                headers={"Retry-After": "30"},
            )
        job = store.create(
            body.model, body.hyperparameters.model_dump(mode="json"), body.promote.value
        )
    except DatabaseBusy as exc:
        raise _busy(exc) from None
    try:
        queue.submit(job.id)
    except Exception as exc:
        store.fail_queued(job.id, "the job queue was unavailable; nothing was run")
        raise ModelUnavailable(
            "the job queue is unavailable; retry shortly",
            internal=f"submitting job {job.id} failed: {type(exc).__name__}: {exc}",
        ) from exc
    response.headers["Location"] = f"/jobs/{job.id}"
    return _detail(job, store, admin=True)


@router.get("", summary="List jobs, newest first")
def list_jobs(
    store: StoreDep,
    admin: IsAdmin,
    model: Annotated[str | None, Query(description="Only this model", max_length=16)] = None,
    status: Annotated[JobStatus | None, Query(description="Only this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobList:
    if model is not None and model not in MODEL_NAMES:
        return JobList(jobs=[], total=0, limit=limit, offset=offset)
    try:
        jobs, total = store.list_jobs(
            model=model, status=status.value if status else None, limit=limit, offset=offset
        )
    except DatabaseBusy as exc:
        raise _busy(exc) from None
    summaries = [JobSummary.model_validate(job) for job in jobs]
    if not admin:
        summaries = [_public(summary) for summary in summaries]
    return JobList(jobs=summaries, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", summary="Inspect a job", responses=error_responses(404, 503))
def get_job(job: ExistingJob, store: StoreDep, admin: IsAdmin) -> Job:
    """Status, timestamps, progress, the per-epoch history so far, the device, and once
    finished the exported version, its test metrics and the promotion decision (or the error;
    the exception behind it, `error_detail`, for administrators only)."""
    return _detail(job, store, admin=admin)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job",
    dependencies=[AdminAccess],
    responses=error_responses(401, 403, 404, 409, 415, 503),
)
def cancel_job(job: ExistingJob, store: StoreDep) -> Job:
    """A queued job never starts; a running job stops at its next batch and exports nothing."""
    if JobStatus(job.status) in FINAL_STATUSES:
        raise Conflict(f"job {job.id} already {job.status}; nothing to cancel")
    try:
        updated = store.request_cancel(job.id)
        if updated is None:
            current = store.get(job.id) or job
    except DatabaseBusy as exc:
        raise _busy(exc) from None
    if updated is None:
        state = current.status if JobStatus(current.status) in FINAL_STATUSES else "asked to stop"
        raise Conflict(f"job {job.id} already {state}; nothing to cancel")
    return _detail(updated, store, admin=True)


@dataclass(frozen=True)
class _Follow:
    """What a new event stream sends: the job first (unless resuming), then its events after
    `after`, fed by `subscription`."""

    subscription: Subscription
    after: int
    first: JobSummary | None


async def follow_job(
    request: Request,
    job_id: JobId,
    store: StoreDep,
    hub: EventHubDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**62)] = None,
) -> AsyncIterator[_Follow]:
    """Refuses a stream (429, 404, or 204 for a finished job already seen to its end) before
    the response starts, then holds the stream's place until the response is over."""
    client = request.client.host if request.client else "unknown"
    hub.reserve(client)  # before any database work: a flood of streams costs little
    subscription = None
    try:
        job = await run_in_threadpool(existing_job, job_id, store)
        after = last_event_id or 0
        if JobStatus(job.status) in FINAL_STATUSES and last_event_id is not None:
            pending = await run_in_threadpool(store.events_after, job_id, after, 1)
            if not pending:
                raise NoContent()
        first = None if last_event_id is not None else _public(JobSummary.model_validate(job))
        subscription = hub.subscribe(job_id, client, after, reserved=True)
    finally:
        if subscription is None:
            hub.release(client)
    try:
        yield _Follow(subscription, after, first)
    finally:
        hub.unsubscribe(subscription)


@router.get(
    "/{job_id}/events",
    summary="Follow a job live (server-sent events)",
    response_class=EventSourceResponse,
    responses={
        204: {"description": "The job is finished and the client has seen every event"},
        **error_responses(404, 429, 503, streaming=True),
    },
)
async def job_events(
    follow: Annotated[_Follow, Depends(follow_job, scope="request")],
    store: StoreDep,
    settings: SettingsDep,
) -> AsyncIterator[ServerSentEvent]:
    """A `job` event with the job as it is, then a `status` event on every status change and
    an `epoch` event per epoch (its loss, metrics, progress and ETA), from the start or after
    `Last-Event-ID`. The stream ends after the final status; reconnecting after that gets 204,
    which tells an EventSource to stop. Streams are capped per client and in total (429), and
    end after `event_stream_timeout_s` (reconnect with Last-Event-ID); a comment is sent
    every 15 s of silence to keep proxies from closing them."""
    subscription, after = follow.subscription, follow.after
    if follow.first is not None:
        yield ServerSentEvent(event="job", data=follow.first, retry=RECONNECT_MS)
    # Catch up with one read of our own; the broadcaster's events that repeat it are skipped
    # by id below.
    backlog = await run_in_threadpool(store.events_after, subscription.job_id, after, 10_000)
    for event in backlog:
        after = event.id
        yield _server_sent(event)
        if is_final(event):
            return
    deadline = time.monotonic() + settings.event_stream_timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(remaining):
                received = await subscription.queue.get()
        except TimeoutError:
            return
        if received is None:
            return
        if received.id <= after:
            continue
        after = received.id
        yield _server_sent(received)
        if is_final(received):
            return


def _server_sent(event: Event) -> ServerSentEvent:
    return ServerSentEvent(event=event.type, data=event.data, id=str(event.id))


_EVENTS_PATH = re.compile(rf"^{re.escape(router.prefix)}/[^/]+/events$")


def event_stream_gatekeeper(app: FastAPI) -> Gatekeeper:
    """Refuses an event stream over its caps in the connection layer, before any middleware or
    routing (service/http/connections.py): a burst of a thousand stream requests from one client
    then costs little enough that other clients are not queued behind it.

    It counts the socket's peer. Behind a trusted proxy the route, which sees the forwarded
    address, still applies the per-client cap; this check then only enforces the total."""

    def gatekeeper(method: str, path: str, client: str) -> ServiceError | None:
        hub: JobEventHub | None = getattr(app.state, "event_hub", None)
        if hub is None or method != "GET" or not _EVENTS_PATH.match(path):
            return None
        try:
            hub.check_capacity(client)
        except TooManyRequests as refusal:
            return refusal
        return None

    return gatekeeper
