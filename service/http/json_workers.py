"""Large JSON bodies parsed in a worker process, so the event loop stays free.

CPython's JSON parser holds the interpreter for the whole parse, and so do the per-value checks
that turn a document into what a route uses (arrays, digit sources, cars): on a thread they
stall the event loop all the same (a 9.8 MB array parsed on a thread held the loop for the
whole 2.3 s, measured). A body larger than `json_inline_bytes` is therefore parsed, checked and
converted by a worker process of this serving process, which hands back only the result
(arrays cross as raw buffers). Smaller bodies are parsed on the loop, where the round trip
would cost more than the parse (bench/RESULTS.md, "JSON bodies").

The worker is spawned on first use and retired after `IDLE_S` without work, so a service that
is not sent large bodies holds no process for them (one holds about 80 MiB). A bounded number
of bodies may wait for it; past that the answer is 503 with Retry-After, as for image decodes.
A worker that dies (killed for memory) is replaced. The body it held is sent once to the
replacement, because the pool cannot tell a body that killed its worker from one handed over
just after the worker died; a body that kills the replacement too is answered 503, and no
further worker is spent on it.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from service.errors import BadRequest, Overloaded

T = TypeVar("T")

WORKERS = 1
"""Worker processes per serving process: bodies past the inline size are rare, and each worker
holds the service's body-reading modules in memory."""
QUEUE_LIMIT = 32
"""Large bodies in the worker or waiting for it beyond which a request is shed with 503."""
IDLE_S = 10.0
"""A worker with no body for this long is retired (its memory given back); the next large
body spawns another, which costs a second or two of start-up (bench/RESULTS.md)."""
RETRY_AFTER_S = 1


def loads(body: bytes) -> Any:
    """The parsed JSON document; 400 when it does not parse, nests too deeply or holds NaN or
    Infinity."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest("the JSON document is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send finite numbers only")


def _parse_and_convert(body: bytes, convert: Callable[..., T], args: tuple[Any, ...]) -> T:
    """In the worker: what `convert` makes of the parsed body."""
    return convert(loads(body), *args)


class JsonWorkers:
    """Parses JSON bodies of more than `inline_bytes` bytes in a worker process; one per
    serving process, closed when the app stops."""

    def __init__(self, inline_bytes: int) -> None:
        self.inline_bytes = inline_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._busy = 0
        self._retirement: asyncio.TimerHandle | None = None

    async def parse(self, body: bytes, convert: Callable[..., T], *args: Any) -> T:
        """`convert(document, *args)` for the parsed `body`: on the event loop for a small body,
        in the worker for a larger one (`convert` must then be a module-level function, and its
        arguments and result picklable). Errors `convert` raises reach the caller either way."""
        if len(body) <= self.inline_bytes:
            return convert(loads(body), *args)
        if self._busy >= QUEUE_LIMIT:
            raise Overloaded(
                f"{self._busy} large JSON bodies are being parsed or waiting; retry in "
                f"{RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._busy += 1
        if self._retirement is not None:
            self._retirement.cancel()
            self._retirement = None
        try:
            return await self._in_worker(body, convert, args)
        finally:
            self._busy -= 1
            if self._busy == 0 and self._pool is not None:
                loop = asyncio.get_running_loop()
                self._retirement = loop.call_later(IDLE_S, self._retire)

    async def _in_worker(self, body: bytes, convert: Callable[..., T], args: tuple[Any, ...]) -> T:
        # A worker that died between bodies is noticed only by the pool's own thread, on its
        # next wake-up: a body handed over meanwhile fails as if it had killed the worker. So a
        # body whose worker dies gets one more, fresh, worker; a body that kills that one too
        # (one that exhausts memory, say) costs only itself a 503.
        for _attempt in range(2):
            try:
                future = self._executor().submit(_parse_and_convert, body, convert, args)
            except BrokenProcessPool:
                self._discard(self._pool)
                continue
            pool = self._pool
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._discard(pool)
        raise Overloaded(
            "the process parsing large JSON bodies stopped while it held this one; retry",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, never forked: the serving process holds TensorFlow's threads.
            self._pool = ProcessPoolExecutor(
                WORKERS, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor | None) -> None:
        """Drops a broken pool, unless a replacement has already been made."""
        if pool is not None and pool is self._pool:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    def _retire(self) -> None:
        self._retirement = None
        if self._busy == 0 and self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False)

    @property
    def busy(self) -> int:
        """Bodies in the worker or waiting for it."""
        return self._busy

    @property
    def running(self) -> bool:
        """Whether a worker process is held (spawned and not yet retired)."""
        return self._pool is not None

    def close(self) -> None:
        """Stops the worker, waiting for the body it holds (a parse takes a few seconds at
        most), so that no process outlives the app."""
        if self._retirement is not None:
            self._retirement.cancel()
            self._retirement = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)
