"""Decode and preprocess time per upload, against the bare decode measured in the same run.

The uploads: the serve benchmark's 280x280 canvas PNG, and corpus files of three conditions
(canvas, paper JPEG, 4000x3000 phone photo). Two ways are timed on the same files, in
alternating rounds so that a noisy neighbour slows both alike: the service's preprocessing
(`service.vision.preprocess`), and Pillow decoding the file alone (with the reduced
JPEG draft the service asks for): the floor no preprocessing can go under. Each call is timed
on the wall clock and in CPU time (`time.process_time`, every thread of this process): on a
busy machine the wall clock counts the time other work held the cores, which the CPU time
does not. Writes the `preprocess` section.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from bench.results import Section, table

ROUNDS = 3
CONDITIONS = {
    "canvas": "corpus canvas (280x280 PNG)",
    "paper_jpeg": "corpus paper JPEG",
    "phone_photo": "corpus phone photo (4000x3000 JPEG)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=10, help="files per corpus condition (10)")
    parser.add_argument("--seed", type=int, default=3, help="corpus seed (3)")
    parser.add_argument("--repeats", type=int, default=20, help="timings of each file per round")


def uploads(count: int, seed: int) -> dict[str, list[bytes]]:
    from bench.payloads import DIGIT_INDEX
    from bench.uploads_corpus import mnist_test_digits, render, sample
    from tests import drawings

    digits, _ = mnist_test_digits()
    found = {"bench digit-canvas (280x280 PNG)": [drawings.transparent_canvas(digits[DIGIT_INDEX])]}
    for condition, name in CONDITIONS.items():
        indices = sample(condition, len(digits), count, seed)
        found[name] = [render(condition, digits[i], int(i), seed) for i in indices]
    return found


def ways() -> dict[str, Callable[[bytes], object]]:
    from PIL import Image

    from service import vision
    from service.settings import Settings

    # The floor decodes as the package's own first step does, so it reads the draft size from
    # inside the package: the one import here that bypasses `service.vision`'s entry points.
    from service.vision.pipeline import JPEG_DRAFT_SIDE

    limits = vision.ImageLimits(Settings().max_image_pixels)

    def decode(data: bytes) -> None:
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG":
            side = max(image.size)
            size = (image.width * JPEG_DRAFT_SIDE // side, image.height * JPEG_DRAFT_SIDE // side)
            image.draft("L", size)
        image.load()

    return {
        "decode": decode,
        "preprocess": lambda data: vision.preprocess(data, limits),
    }


def run(args: argparse.Namespace) -> list[Section]:
    files, timed = uploads(args.count, args.seed), ways()
    wall: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for name, blobs in files.items():
            for way, work in timed.items():
                for blob in blobs:
                    work(blob)  # warm
                for _ in range(args.repeats):
                    for blob in blobs:
                        start, start_cpu = time.perf_counter(), time.process_time()
                        work(blob)
                        cpu.setdefault((name, way), []).append(time.process_time() - start_cpu)
                        wall.setdefault((name, way), []).append(time.perf_counter() - start)
    rows = []
    for name, blobs in files.items():
        decode, full = (1000 * statistics.median(wall[name, way]) for way in timed)
        decode_cpu, full_cpu = (1000 * statistics.median(cpu[name, way]) for way in timed)
        rows.append(
            [
                name,
                str(len(blobs)),
                f"{decode:.2f}",
                f"{full:.2f}",
                f"{full - decode:.2f}",
                f"{full / decode:.2f}",
                f"{decode_cpu:.2f}",
                f"{full_cpu:.2f}",
                f"{full_cpu / decode_cpu:.2f}",
            ]
        )
    columns = (
        "upload",
        "files",
        "decode only",
        "decode + preprocess",
        "preprocess",
        "/ decode",
        "CPU: decode only",
        "CPU: decode + preprocess",
        "CPU: / decode",
    )
    text = "Median milliseconds per upload, in this process, rounds alternating:\n\n"
    return [Section("preprocess", text + table(columns, rows, labels=1))]
