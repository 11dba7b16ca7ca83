"""Database work of the app's background tasks, run in a thread that a cancelled task still
waits for: the lifespan cancels those tasks and then closes the job store, and a thread left
running would hold a connection of the closed pool, never returned and never closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread_to_the_end(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a worker thread. When the awaiting task is cancelled, the
    cancellation waits for the thread to finish (its result or error is dropped), then goes on."""
    call = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        await asyncio.wait([call])
        raise
