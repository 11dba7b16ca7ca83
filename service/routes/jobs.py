"""Training jobs over the API: create (admin), list, inspect, follow live, cancel (admin)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.sse import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from service.connections import Gatekeeper
from service.deps import AdminAccess, SettingsDep
from service.errors import (
    Conflict,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    ServiceError,
    TooManyRequests,
    error_responses,
)
from service.jobs.broadcast import JobEventHub, Subscription, is_final
from service.jobs.queue import JobQueue
from service.jobs.store import FINAL_STATUSES, DatabaseBusy, JobStatus, JobStore
from service.jobs.tables import JobRow
from service.schemas.jobs import (
    JOB_REQUEST_EXAMPLES,
    Job,
    JobList,
    JobRequest,
    JobSummary,
)
from training.cost import estimate_cost
from training.hyperparameters import MODEL_NAMES

router = APIRouter(prefix="/jobs", tags=["jobs"])

KEEPALIVE_S = 15.0
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


def _detail(job: JobRow, store: JobStore) -> Job:
    return Job.model_validate(job).model_copy(update={"history": store.history(job.id)})


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _busy(exc: DatabaseBusy) -> ModelUnavailable:
    return ModelUnavailable(f"{exc}; retry shortly", headers={"Retry-After": "1"})


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
    responses=error_responses(400, 401, 403, 422, 429, 503),
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
    estimated run time exceeds `max_job_cost_s` is refused with 422."""
    cost = estimate_cost(body.model, body.hyperparameters)
    if cost.seconds > settings.max_job_cost_s:
        raise InvalidInput(
            f"this job is estimated to run {_duration(cost.seconds)} ({cost.steps:,} steps of "
            f"{cost.macs_per_sample:,} multiply-adds per sample) on the reference machine; "
            f"the limit is {_duration(settings.max_job_cost_s)} (PERCEPTRON_MAX_JOB_COST_S): "
            "use fewer epochs, a larger batch or a smaller model"
        )
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
        store.fail_queued(job.id, f"the job queue was unavailable: {exc}")
        raise ModelUnavailable(f"the job queue is unavailable: {exc}") from exc
    response.headers["Location"] = f"/jobs/{job.id}"
    return _detail(job, store)


@router.get("", summary="List jobs, newest first")
def list_jobs(
    store: StoreDep,
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
    return JobList(jobs=summaries, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", summary="Inspect a job", responses=error_responses(404, 503))
def get_job(job: ExistingJob, store: StoreDep) -> Job:
    """Status, timestamps, progress, the per-epoch history so far, the device, and once
    finished the exported version, its test metrics and the promotion decision (or the error)."""
    return _detail(job, store)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job",
    dependencies=[AdminAccess],
    responses=error_responses(401, 403, 404, 409, 503),
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
    return _detail(updated, store)


@router.get(
    "/{job_id}/events",
    summary="Follow a job live (server-sent events)",
    response_class=Response,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        204: {"description": "The job is finished and the client has seen every event"},
        **error_responses(404, 429, 503),
    },
)
async def job_events(
    request: Request,
    job_id: JobId,
    store: StoreDep,
    hub: EventHubDep,
    settings: SettingsDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**62)] = None,
) -> Response:
    """A `job` event with the job as it is, then a `status` event on every status change and
    an `epoch` event per epoch (its loss, metrics, progress and ETA), from the start or after
    `Last-Event-ID`. The stream ends after the final status; reconnecting after that gets 204,
    which tells an EventSource to stop. Streams are capped per client and in total (429), and
    end after `event_stream_timeout_s` (reconnect with Last-Event-ID)."""
    client = request.client.host if request.client else "unknown"
    hub.reserve(client)  # before any database work: a flood of streams costs little
    subscription = None
    try:
        job = await run_in_threadpool(existing_job, job_id, store)
        after = last_event_id or 0
        if JobStatus(job.status) in FINAL_STATUSES and last_event_id is not None:
            pending = await run_in_threadpool(store.events_after, job_id, after, 1)
            if not pending:
                return Response(status_code=204)
        first = (
            None
            if last_event_id is not None
            else JobSummary.model_validate(job).model_dump(mode="json")
        )
        subscription = hub.subscribe(job_id, client, after, reserved=True)
    finally:
        if subscription is None:
            hub.release(client)
    stream = _stream(hub, subscription, store, after, first, settings.event_stream_timeout_s)
    # The generator unsubscribes when it ends; the background task covers a response that
    # never started streaming (unsubscribing twice is harmless).
    return EventSourceResponse(stream, background=BackgroundTask(hub.unsubscribe, subscription))


async def _stream(
    hub: JobEventHub,
    subscription: Subscription,
    store: JobStore,
    after: int,
    first: dict[str, Any] | None,
    timeout_s: float,
) -> AsyncIterator[bytes]:
    job_id = subscription.job_id
    try:
        if first is not None:
            yield _sse("job", first, retry=RECONNECT_MS)
        # Catch up with one read of our own; the broadcaster's events that repeat it are
        # skipped by id below.
        backlog = await run_in_threadpool(store.events_after, job_id, after, 10_000)
        for event in backlog:
            after = event.id
            yield _sse(event.type, event.data, event_id=event.id)
            if is_final(event):
                return
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(min(KEEPALIVE_S, remaining)):
                    received = await subscription.queue.get()
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if received is None:
                return
            if received.id <= after:
                continue
            after = received.id
            yield _sse(received.type, received.data, event_id=received.id)
            if is_final(received):
                return
    finally:
        hub.unsubscribe(subscription)


def _sse(kind: str, data: Any, *, event_id: int | None = None, retry: int | None = None) -> bytes:
    lines = [f"event: {kind}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


_EVENTS_PATH = re.compile(rf"^{re.escape(router.prefix)}/[^/]+/events$")


def event_stream_gatekeeper(app: FastAPI) -> Gatekeeper:
    """Refuses an event stream over its caps in the connection layer, before any middleware or
    routing (service/connections.py): a burst of a thousand stream requests from one client
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
