"""The adaptive batcher, with a fake model (the one place a fake belongs: failure injection,
and counting calls)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from service.batching import AdaptiveBatcher, InferenceFailed
from service.errors import Overloaded

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingModel:
    """Doubles its input; records the size of every call; can be slow or fail."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self.running = threading.Event()
        """Set once a call has begun."""

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(len(inputs["x"]))
        self.running.set()
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the model exploded")
        return {"y": inputs["x"] * 2}


def batcher(model: RecordingModel, **options: float) -> AdaptiveBatcher:
    settings = {"max_batch": 64, "max_wait_s": 0.002, "queue_limit": 1000} | options
    return AdaptiveBatcher(model, name="test", **settings)


def rows(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float32)}


async def test_concurrent_requests_share_calls_and_get_their_own_rows() -> None:
    model = RecordingModel(delay=0.01)
    b = batcher(model)
    results = await asyncio.gather(*(b.submit(rows(i, i + 0.5)) for i in range(40)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], [2 * i, 2 * i + 1])
    assert sum(model.calls) == 80
    assert len(model.calls) < 40, "requests were not batched"
    assert max(model.calls) <= 64
    assert model.threads == {name for name in model.threads if name.startswith("infer-test")}
    await b.close()


async def test_a_lone_request_does_not_wait_for_the_full_window() -> None:
    b = batcher(RecordingModel(), max_wait_s=0.5)
    started = time.perf_counter()
    await b.submit(rows(1))
    assert time.perf_counter() - started < 0.25
    await b.close()


async def test_a_request_larger_than_the_batch_runs_alone() -> None:
    model = RecordingModel()
    b = batcher(model, max_batch=4)
    result = await b.submit({"x": np.arange(10, dtype=np.float32)})
    np.testing.assert_array_equal(result["y"], np.arange(10) * 2)
    assert model.calls == [10]
    await b.close()


async def test_a_failed_call_fails_every_request_in_it() -> None:
    model = RecordingModel(delay=0.01, fail=True)
    b = batcher(model)
    outcomes = await asyncio.gather(*(b.submit(rows(i)) for i in range(10)), return_exceptions=True)
    assert all(isinstance(o, InferenceFailed) for o in outcomes)
    # The exception is for the log (with each request's id), never for the client.
    assert "exploded" not in str(outcomes[0]) and "request id" in str(outcomes[0])
    assert all("RuntimeError: the model exploded" in (o.internal or "") for o in outcomes)
    model.fail = False
    assert (await b.submit(rows(3)))["y"].tolist() == [6]  # and it recovers
    await b.close()


async def test_a_full_queue_sheds_load_with_overloaded() -> None:
    shed = []
    model = RecordingModel(delay=0.05)
    b = AdaptiveBatcher(
        model,
        name="test",
        max_batch=2,
        max_wait_s=0.001,
        queue_limit=4,
        on_shed=lambda: shed.append(1),
    )
    outcomes = await asyncio.gather(*(b.submit(rows(i)) for i in range(20)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Overloaded)]
    served = [o for o in outcomes if isinstance(o, dict)]
    assert refused and served and len(refused) + len(served) == 20
    assert refused[0].status == 503 and refused[0].headers == {"Retry-After": "1"}
    assert len(shed) == len(refused)
    await b.close()


@pytest.mark.parametrize("options", [{"max_batch": 0}, {"max_wait_s": 0.0}])
async def test_batching_can_be_turned_off(options: dict[str, float]) -> None:
    model = RecordingModel(delay=0.005)
    b = batcher(model, **options)
    results = await asyncio.gather(*(b.submit(rows(i)) for i in range(8)))
    assert [r["y"].tolist() for r in results] == [[2 * i] for i in range(8)]
    assert model.calls == [1] * 8
    await b.close()


async def test_close_finishes_what_is_queued() -> None:
    model = RecordingModel(delay=0.02)
    b = batcher(model, max_batch=2)
    pending = [asyncio.ensure_future(b.submit(rows(i))) for i in range(6)]
    await asyncio.sleep(0)
    await b.close()
    assert [p.result()["y"].tolist() for p in pending] == [[2 * i] for i in range(6)]


async def test_cancelled_requests_drop_out_of_their_batch() -> None:
    model = RecordingModel(delay=0.05)
    b = batcher(model)
    first = asyncio.ensure_future(b.submit(rows(1)))
    # The first call is running (for 0.05 s); the next ones queue behind it.
    assert await asyncio.to_thread(model.running.wait, 5)
    doomed = asyncio.ensure_future(b.submit(rows(2)))
    kept = asyncio.ensure_future(b.submit(rows(3)))
    await asyncio.sleep(0)
    doomed.cancel()
    assert (await kept)["y"].tolist() == [6]
    await first
    assert model.calls == [1, 1]
    await b.close()


async def test_a_request_arriving_after_close_is_still_answered() -> None:
    """A request that took this version before a swap retired it (its body was still
    arriving) is answered by it, not queued behind a consumer that has stopped."""
    model = RecordingModel()
    b = batcher(model)
    assert (await b.submit(rows(1)))["y"].tolist() == [2]  # the consumer exists
    await b.close()
    late = await asyncio.wait_for(b.submit(rows(4)), timeout=5)
    assert late["y"].tolist() == [8]
    failing = batcher(RecordingModel(fail=True))
    await failing.close()
    with pytest.raises(InferenceFailed) as failed:
        await asyncio.wait_for(failing.submit(rows(1)), timeout=5)
    assert "exploded" in (failed.value.internal or "")


async def test_cheap_calls_run_on_the_event_loop_once_their_cost_is_known() -> None:
    model = RecordingModel()
    b = batcher(model, inline_max_s=0.05)
    assert not b.runs_inline(1)  # nothing measured yet: the first call goes to the thread
    first = await b.submit(rows(1))
    assert model.threads == {"infer-test_0"} and first["y"].tolist() == [2]
    assert b.runs_inline(1)
    results = [await b.submit(rows(i)) for i in range(5)]
    assert [r["y"].tolist() for r in results] == [[2 * i] for i in range(5)]
    assert threading.current_thread().name in model.threads
    await b.close()


async def test_calls_costlier_than_the_bound_stay_on_the_inference_thread() -> None:
    model = RecordingModel(delay=0.02)
    b = batcher(model, inline_max_s=0.005)
    for i in range(3):
        await b.submit(rows(i))
    assert model.threads == {"infer-test_0"} and not b.runs_inline(1)
    await b.close()


async def test_no_call_runs_inline_with_a_bound_of_zero() -> None:
    model = RecordingModel()
    b = batcher(model, inline_max_s=0.0)
    for i in range(3):
        await b.submit(rows(i))
    assert model.threads == {"infer-test_0"}
    await b.close()


async def test_an_inline_call_that_fails_fails_its_requests_the_same_way() -> None:
    model = RecordingModel()
    b = batcher(model, inline_max_s=0.05)
    await b.submit(rows(1))
    model.fail = True
    with pytest.raises(InferenceFailed, match="request id"):
        await b.submit(rows(2))
    assert threading.current_thread().name in model.threads
    await b.close()
