"""JSON bodies: parsing on the event loop against the round trip to a worker process, by size.

For bodies of each endpoint's shape (TF Serving digit instances, Open Inference v2 flat data,
/mpg cars) and sizes from 16 KiB to the largest the endpoint accepts, it times what a request
costs the event loop when the body is parsed and converted there (`JsonWorkers.parse` with the
whole body inline), and the round trip through a warm worker process (the loop is busy only
for sending the body and receiving the arrays); and the start of a worker (spawn and imports).
The inline threshold `json_inline_bytes` is the size past which parsing on the loop costs more
than the round trip, or stalls the loop beyond what its other clients should wait. Writes the
`json-bodies` section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from bench.results import Section, table

SIZES_KIB = (16, 64, 256, 1024, 0)
"""0: the costliest body each endpoint's value cap lets through."""
CAR = {
    "cylinders": 4,
    "displacement": 140.0,
    "horsepower": 90.0,
    "weight": 2264.0,
    "acceleration": 15.5,
    "model_year": 71,
    "origin": 1,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="timings per size (median)")
    parser.add_argument("--starts", type=int, default=3, help="worker starts timed (median)")


MAX_IMAGES = 256
MAX_CARS = 1000
"""The default row limits (PERCEPTRON_MAX_BATCH_IMAGES, _CARS): the value caps refuse larger
bodies before parsing, so only sizes within them are timed."""
LONG_NUMBER = 0.12345678901234567
"""17 digits: the costliest number per value, so 256 images of them are the costliest body the
digit endpoints parse."""


def bodies(size: int) -> dict[str, tuple[bytes, Callable[..., Any], tuple[Any, ...]]]:
    """Per endpoint: a body of about `size` bytes within the endpoint's value cap (0 in `size`:
    the costliest one the cap allows), the conversion its route asks for, and its arguments."""
    from service.http.bodies import parse_cars
    from service.routes.inference_v2 import parse_infer_request
    from service.routes.tfserving import parse_predict_request
    from training.signatures import SIGNATURES

    found: dict[str, tuple[bytes, Callable[..., Any], tuple[Any, ...]]] = {}
    if size:
        count = max(1, round(size / (28 * 28 * 7)))  # 4-decimal pixels: about 5.4 KiB an image
        images = np.random.default_rng(0).random((count, 28, 28)).round(4).tolist()
    else:
        count = MAX_IMAGES
        images = np.full((count, 28, 28), LONG_NUMBER).tolist()
    if count <= MAX_IMAGES:
        flat = np.asarray(images).ravel().tolist()
        tensor = {"name": "image", "shape": [count, 28, 28], "datatype": "FP32", "data": flat}
        found["/v1 digit instances"] = (
            json.dumps({"instances": images}).encode(),
            parse_predict_request,
            (SIGNATURES["digit"],),
        )
        found["/v2 digit data"] = (
            json.dumps({"inputs": [tensor]}).encode(),
            parse_infer_request,
            (SIGNATURES["digit"],),
        )
    cars = MAX_CARS if not size else max(1, round(size / len(json.dumps(CAR))))
    if cars <= MAX_CARS:
        found["/mpg cars"] = (json.dumps([CAR] * cars).encode(), parse_cars, (MAX_CARS,))
    return found


async def _time(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(args: argparse.Namespace) -> list[list[str]]:
    from service.http.json_workers import JsonWorkers

    inline = JsonWorkers(inline_bytes=1 << 62)
    rows = []
    starts = []
    for _ in range(args.starts):
        worker = JsonWorkers(inline_bytes=0)
        body, convert, extra = bodies(16 * 1024)["/mpg cars"]
        started = time.perf_counter()
        await worker.parse(body, convert, *extra)
        starts.append(time.perf_counter() - started)
        worker.close()
    worker = JsonWorkers(inline_bytes=0)
    try:
        for size_kib in SIZES_KIB:
            for endpoint, (body, convert, extra) in bodies(size_kib * 1024).items():
                await worker.parse(body, convert, *extra)  # warm: imports, allocator
                on_loop = await _time(partial(inline.parse, body, convert, *extra), args.repeat)
                round_trip = await _time(partial(worker.parse, body, convert, *extra), args.repeat)
                loop_busy = await _loop_busy(worker, body, convert, extra)
                rows.append(
                    [endpoint, f"{len(body) / 1024:,.0f}", f"{on_loop * 1000:.1f}",
                     f"{round_trip * 1000:.1f}", f"{loop_busy * 1000:.1f}"]
                )  # fmt: skip
                print(" | ".join(rows[-1]), flush=True)
    finally:
        worker.close()
    start = f"{statistics.median(starts) * 1000:.0f}"
    rows.append(["worker start (spawn, imports; 16 KiB of cars)", "", "", start, ""])
    return rows


async def _loop_busy(
    worker: Any, body: bytes, convert: Callable[..., Any], extra: tuple[Any, ...]
) -> float:
    """The event loop's longest stall while the worker parses `body`: a ticker's largest gap."""
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.005)
    await worker.parse(body, convert, *extra)
    done = True
    await ticker
    return worst


def run(args: argparse.Namespace) -> list[Section]:
    rows = asyncio.run(measure(args))
    columns = (
        "body",
        "size (KiB)",
        "parsed on the loop (ms)",
        "worker round trip (ms)",
        "loop's longest stall meanwhile (ms)",
    )
    return [Section("json-bodies", table(columns, rows, labels=1))]
