"""Background tasks' database work finishes before the app closes the job store: cancelling a
task waits for the thread it started (service/database/threads.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.database.threads import in_thread_to_the_end


def test_a_cancelled_task_waits_for_its_thread_then_stays_cancelled() -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)  # the slow call under test, which the cancellation must wait for
        finished.set()

    async def scenario() -> None:
        task = asyncio.create_task(in_thread_to_the_end(slow))
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set(), "the cancellation returned while the thread still ran"

    asyncio.run(scenario())


def test_results_and_errors_come_back_when_not_cancelled() -> None:
    def fails() -> None:
        raise LookupError("no such job")

    async def scenario() -> None:
        assert await in_thread_to_the_end(divmod, 7, 2) == (3, 1)
        with pytest.raises(LookupError, match="no such job"):
            await in_thread_to_the_end(fails)

    asyncio.run(scenario())
