"""Adaptive batching: concurrent requests for one model version share one model call.

Requests queue rows; a single consumer task takes what has queued and runs it as one call on
the model's own inference thread, so the event loop never waits on TensorFlow. While a call
runs, new requests queue up, which is what makes batches grow with load. When the model is
idle, the first request waits at most `max_wait` for others, and less when a full pass of the
event loop brings nobody new: at low load batching adds microseconds, not the whole wait.

A call expected to take at most `inline_max_s` runs on the event loop itself: handing it to
the inference thread and back costs more than a compiled model's small batch (bench/RESULTS.md).
The expectation is learnt from the calls made so far (their duration per row, measured where
they ran); the first call, and any while another call is running, go to the thread.

Each request gets its own future and its own slice of the results, in order. A failed call
fails every request in it with the same error. Past `queue_limit` waiting rows, requests are
refused with `Overloaded` (503) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from service.errors import Overloaded, ServiceError
from service.runtimes import Tensors

__all__ = ["AdaptiveBatcher", "InferenceFailed", "Tensors"]

RunBatch = Callable[[Tensors], Tensors]

log = logging.getLogger(__name__)


class InferenceFailed(ServiceError):
    status, code = 500, "inference_failed"


@dataclass
class _Pending:
    inputs: Tensors
    rows: int
    future: asyncio.Future[Tensors]
    queued_at: float = field(default_factory=time.perf_counter)


class AdaptiveBatcher:
    def __init__(
        self,
        run: RunBatch,
        *,
        name: str,
        max_batch: int,
        max_wait_s: float,
        queue_limit: int,
        inline_max_s: float = 0.0,
        on_batch: Callable[[int, float], None] | None = None,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        self._run = run
        self.name = name
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue_limit = queue_limit
        self.inline_max_s = inline_max_s
        self._seconds_per_row: float | None = None
        """Moving average of the model calls' duration per row."""
        self._threaded_calls = 0
        self._on_batch = on_batch
        self._on_shed = on_shed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake: asyncio.Event | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def closing(self) -> bool:
        """Whether close() has begun: no request is taken any more."""
        return self._closing

    @property
    def enabled(self) -> bool:
        return self.max_batch > 0 and self.max_wait_s > 0

    async def submit(self, inputs: Tensors) -> Tensors:
        """Runs `inputs` (arrays sharing a leading row dimension) through the model, possibly
        with other requests' rows, and returns this request's rows of every output."""
        rows = len(next(iter(inputs.values())))
        if self._closing:
            # The caller took this version before a swap retired it (while its body was still
            # arriving, say): serve it on this version as promised, on a shared thread. The
            # consumer may have stopped and the inference thread gone, so queueing would wait
            # forever.
            return await self._execute(inputs, rows, own_thread=False)
        if self._queued_rows + self._in_flight + rows > self.queue_limit and (
            self._queued_rows or self._in_flight
        ):
            if self._on_shed:
                self._on_shed()
            raise Overloaded(
                f"model {self.name} has {self._queued_rows + self._in_flight} rows waiting; "
                "retry shortly",
                headers={"Retry-After": "1"},
            )
        if not self.enabled:
            return await self._call_alone(inputs, rows)
        loop = asyncio.get_running_loop()
        if self._consumer is None:
            # Created lazily so the queue lives in the loop that serves requests.
            self._wake = asyncio.Event()
            self._consumer = loop.create_task(self._consume(), name=f"batcher-{self.name}")
        pending = _Pending(inputs, rows, loop.create_future())
        self._queue.append(pending)
        self._queued_rows += rows
        assert self._wake is not None
        self._wake.set()
        return await pending.future

    def _begin(self, rows: int) -> None:
        self._in_flight += rows
        self._idle.clear()

    def _end(self, rows: int) -> None:
        self._in_flight -= rows
        if not self._in_flight:
            self._idle.set()

    async def _call_alone(self, inputs: Tensors, rows: int) -> Tensors:
        self._begin(rows)
        try:
            return await self._execute(inputs, rows)
        finally:
            self._end(rows)

    def runs_inline(self, rows: int) -> bool:
        """Whether a call of `rows` rows would run on the event loop now."""
        return (
            self._seconds_per_row is not None
            and rows * self._seconds_per_row <= self.inline_max_s
            and not self._threaded_calls
        )

    def _timed_run(self, inputs: Tensors) -> tuple[Tensors, float]:
        started = time.perf_counter()
        outputs = self._run(inputs)
        return outputs, time.perf_counter() - started

    async def _execute(self, inputs: Tensors, rows: int, *, own_thread: bool = True) -> Tensors:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        executor = self._executor if own_thread else None  # None: the loop's default pool
        try:
            if own_thread and self.runs_inline(rows):
                outputs, call_s = self._timed_run(inputs)
            else:
                self._threaded_calls += 1
                try:
                    outputs, call_s = await loop.run_in_executor(executor, self._timed_run, inputs)
                finally:
                    self._threaded_calls -= 1
        except Exception as exc:
            log.exception("model call failed for %s (%d rows)", self.name, rows)
            raise InferenceFailed(
                "the model failed to compute the answer; the request id identifies the failure "
                "in the service's log",
                internal=f"model call of {self.name} failed: {type(exc).__name__}: {exc}",
            ) from exc
        per_row = call_s / max(rows, 1)
        previous = self._seconds_per_row
        self._seconds_per_row = per_row if previous is None else 0.8 * previous + 0.2 * per_row
        if self._on_batch:
            self._on_batch(rows, time.perf_counter() - started)
        return outputs

    async def _consume(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather()
            batch = self._take()
            rows = sum(p.rows for p in batch)
            self._begin(rows)
            try:
                await self._run_batch(batch, rows)
            finally:
                self._end(rows)

    async def _gather(self) -> None:
        """Waits for companions while the batch is short, up to `max_wait` after the oldest
        request queued, stopping early when a pass of the event loop brings nobody new."""
        deadline = self._queue[0].queued_at + self.max_wait_s
        while self._queued_rows < self.max_batch and time.perf_counter() < deadline:
            before = len(self._queue)
            await asyncio.sleep(0)
            if len(self._queue) == before:
                return

    def _take(self) -> list[_Pending]:
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        while self._queue and rows + self._queue[0].rows <= self.max_batch:
            item = self._queue.popleft()
            batch.append(item)
            rows += item.rows
        self._queued_rows -= rows
        return batch

    async def _run_batch(self, batch: list[_Pending], rows: int) -> None:
        live = [p for p in batch if not p.future.done()]  # cancelled clients drop out
        if not live:
            return
        rows = sum(p.rows for p in live)
        if len(live) == 1:
            inputs = live[0].inputs
        else:
            inputs = {k: np.concatenate([p.inputs[k] for p in live]) for k in live[0].inputs}
        try:
            outputs = await self._execute(inputs, rows)
        except ServiceError as exc:
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        start = 0
        for pending in live:
            end = start + pending.rows
            if not pending.future.done():
                pending.future.set_result({k: v[start:end] for k, v in outputs.items()})
            start = end

    async def close(self) -> None:
        """Finishes every queued request, then releases the inference thread."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._consumer is not None:
            await self._consumer
        await self._idle.wait()
        self._executor.shutdown(wait=False)
