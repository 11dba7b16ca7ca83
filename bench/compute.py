"""In-process ceilings, measured in a subprocess of the harness (its own TensorFlow):

* the served model's signature (`tf.saved_model.load(path).signatures["serving_default"]`)
  called directly on batches of 1, 32 and 256: milliseconds per call and rows per second;
* the decode-and-preprocess time of each benchmark image through `service.vision.preprocess`.

TensorFlow's thread settings are the service's (PERCEPTRON_TF_*), so the ceiling is the
model as the service runs it. `python -m bench.compute --models-dir D --image F... --json OUT`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.servers import newest_version

BATCH_SIZES = (1, 32, 256)
MPG_BATCH_SIZES = (1, 100)


def time_calls(
    call: Callable[[], object], *, min_seconds: float, min_calls: int = 5
) -> list[float]:
    """Seconds per call, for at least `min_calls` calls and `min_seconds` in all."""
    call()  # warm-up
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return times


def _summary(times: list[float], rows: int) -> dict[str, float]:
    median = statistics.median(times)
    return {
        "rows": rows,
        "calls": len(times),
        "ms_per_call": median * 1000,
        "rows_per_s": rows / median,
        "mean_rows_per_s": rows * len(times) / sum(times),
    }


def model_ceiling(
    path: Path,
    inputs: Callable[[int], dict[str, np.ndarray]],
    batches: tuple[int, ...],
    seconds: float,
) -> list[dict[str, float]]:
    import tensorflow as tf

    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    results = []
    for rows in batches:
        tensors = {k: tf.convert_to_tensor(v) for k, v in inputs(rows).items()}

        def call(tensors: dict[str, Any] = tensors) -> None:
            for value in function(**tensors).values():
                value.numpy()

        results.append(_summary(time_calls(call, min_seconds=seconds), rows))
    return results


def preprocess_times(image: bytes, seconds: float) -> dict[str, float]:
    from service import vision
    from service.settings import Settings

    limits = vision.ImageLimits(Settings().max_image_pixels)
    times = time_calls(
        lambda: vision.preprocess(image, limits),
        min_seconds=seconds,
        min_calls=50,
    )
    return {
        "calls": len(times),
        "median_ms": statistics.median(times) * 1000,
        "mean_ms": 1000 * sum(times) / len(times),
    }


def measure(models_dir: Path, images: dict[str, bytes], seconds: float) -> dict[str, Any]:
    from service.app import configure_tensorflow
    from service.settings import Settings
    from training.cars import FEATURE_NAMES

    configure_tensorflow(Settings())
    rng = np.random.default_rng(0)
    digit = model_ceiling(
        newest_version(models_dir / "digit"),
        lambda rows: {"image": rng.random((rows, 28, 28), dtype=np.float32)},
        BATCH_SIZES,
        seconds,
    )
    mpg = model_ceiling(
        newest_version(models_dir / "mpg"),
        lambda rows: {name: np.full(rows, 5.0, np.float32) for name in FEATURE_NAMES},
        MPG_BATCH_SIZES,
        seconds,
    )
    preprocess = {name: preprocess_times(data, seconds) for name, data in images.items()}
    return {"digit": digit, "mpg": mpg, "preprocess": preprocess}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compute")
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--image", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--json", type=Path, required=True)
    options = parser.parse_args()
    images = {}
    for item in options.image:
        name, _, file = item.partition("=")
        images[name] = Path(file).read_bytes()
    result = measure(options.models_dir, images, options.seconds)
    options.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
