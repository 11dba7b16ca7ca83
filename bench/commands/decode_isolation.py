"""Does decoding uploads in a worker process with a CPU-time limit pay, against threads?

An experiment for the decode slots: its section is `decode-isolation`.

For three uploads (a web canvas, a 12-megapixel phone photo, a 25-megapixel lossless WebP) it
times `vision.preprocess` called directly, on a thread, and in a process pool whose workers set
RLIMIT_CPU (spawned, as the service spawns everything), and how far the event loop lags while
two such decodes run on threads or in processes; and the memory a worker process holds.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import io
import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from bench import procstat
from bench.attacks import canvas_png
from bench.results import Section, table

CPU_LIMIT_S = 5


def _limit_cpu() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, CPU_LIMIT_S + 1))
    from service import vision  # noqa: F401  (imported before the first task, as a warm worker)


def _preprocess(data: bytes) -> np.ndarray:
    from service import vision

    try:
        return vision.preprocess(data)
    except vision.ImageError:
        return np.zeros((28, 28), np.float32)


def uploads() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(90, 110, (3000, 4000, 3), dtype=np.uint8))
    photo.paste((20, 20, 20), (1800, 1000, 2200, 2000))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    webp = io.BytesIO()
    Image.new("L", (5000, 5000), 255).save(webp, "WEBP", lossless=True)
    return {
        "canvas": canvas_png(),
        "photo 12 MP JPEG": buffer.getvalue(),
        "WebP 25 MP": webp.getvalue(),
    }


def timed(call: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def loop_lag(run_two: Callable[[], Any]) -> float:
    """Worst event-loop lag (ms) while `run_two` (two decodes) runs off the loop."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - started) * 1000 - 1)

    task = asyncio.create_task(ticker())
    await run_two()
    stop.set()
    await task
    return max(lags)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="timings per large upload (5)")


def run(args: argparse.Namespace) -> list[Section]:
    files = uploads()
    threads = concurrent.futures.ThreadPoolExecutor(2)
    processes = concurrent.futures.ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn"), initializer=_limit_cpu
    )
    list(processes.map(_preprocess, [files["canvas"]] * 4))  # workers started and warm
    rows = []
    for name, data in files.items():
        repeat = 6 * args.repeat if name == "canvas" else args.repeat
        direct = timed(lambda d=data: _preprocess(d), repeat)
        thread = timed(lambda d=data: threads.submit(_preprocess, d).result(), repeat)
        process = timed(lambda d=data: processes.submit(_preprocess, d).result(), repeat)
        loop = asyncio.new_event_loop()

        async def two_threads(d: bytes = data) -> None:
            running = asyncio.get_running_loop()
            await asyncio.gather(*(running.run_in_executor(threads, _preprocess, d) for _ in "ab"))

        async def two_processes(d: bytes = data) -> None:
            running = asyncio.get_running_loop()
            await asyncio.gather(
                *(running.run_in_executor(processes, _preprocess, d) for _ in "ab")
            )

        lag_threads = loop.run_until_complete(loop_lag(two_threads))
        lag_processes = loop.run_until_complete(loop_lag(two_processes))
        loop.close()
        rows.append(
            [name, f"{len(data):,}", f"{statistics.median(direct):.1f}",
             f"{statistics.median(thread):.1f}", f"{statistics.median(process):.1f}",
             f"{lag_threads:.1f}", f"{lag_processes:.1f}"]
        )  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    workers = procstat.children(multiprocessing.current_process().pid or 0)
    each = ", ".join(f"{procstat.process_rss_mib(pid):.0f}" for pid in workers)
    processes.shutdown()
    threads.shutdown()
    columns = ("upload", "bytes", "direct ms (median)", "thread ms", "process ms",
               "loop lag, 2 on threads (ms)", "loop lag, 2 in processes (ms)")  # fmt: skip
    text = table(columns, rows, labels=1)
    text += f"\n\nWorker processes: {len(workers)}, resident memory each: {each} MiB."
    return [Section("decode-isolation", text)]
