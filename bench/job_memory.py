"""`python -m bench.job_memory`: peak resident memory of digit training steps, measured against
`training.cost.estimate_memory`, for the constants that estimate uses.

Each recipe runs in a fresh process: the model is built and compiled as a job builds it
(`training.train`), then trained for two steps on random images; the figure is the growth of
the process's peak resident memory (`ru_maxrss`) over its level just before `fit`, so the
TensorFlow runtime and the data set, which every job pays alike, are left out.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from typing import Any

RECIPES: list[dict[str, Any]] = [
    {"batch_size": 32},
    {"batch_size": 128},
    {"batch_size": 512},
    {"conv_filters": [32, 64], "batch_size": 128},
    {"conv_filters": [64, 128], "batch_size": 256},
    {"conv_filters": [256, 256, 256], "batch_size": 8},
    {"conv_filters": [256, 256, 256], "batch_size": 32},
    {"conv_filters": [256, 256, 256], "batch_size": 64},
    {"architecture": "mlp", "batch_size": 128},
    {"architecture": "mlp", "hidden_units": [2048] * 6, "batch_size": 2048},
]


def measure(recipe: dict[str, Any]) -> dict[str, Any]:
    """In this process: the peak memory growth of two training steps of `recipe`."""
    import numpy as np

    from training import components, digit_model
    from training.cost import estimate_memory
    from training.hyperparameters import DigitHyperparameters

    hp = DigitHyperparameters.model_validate(recipe)
    model = digit_model.build_digit_model(hp)
    model.compile(
        optimizer=components.optimizer(hp, 2),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    rng = np.random.default_rng(0)
    x = rng.random((2 * hp.batch_size, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 2 * hp.batch_size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.fit(x, y, batch_size=hp.batch_size, epochs=1, verbose=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    estimate = estimate_memory(hp)
    return {
        "recipe": recipe,
        "parameters": model.count_params(),
        "measured_mib": round((peak - before) / 1024, 1),
        "estimated_mib": round(estimate.step_bytes / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.job_memory", description=__doc__)
    parser.add_argument("--one", help="(internal) measure this JSON recipe in this process")
    options = parser.parse_args(argv)
    if options.one:
        print(json.dumps(measure(json.loads(options.one))), flush=True)
        return 0
    print("| recipe | parameters | measured (MiB) | estimated (MiB) |\n|---|---:|---:|---:|")
    for recipe in RECIPES:
        done = subprocess.run(
            [sys.executable, "-m", "bench.job_memory", "--one", json.dumps(recipe)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {json.dumps(row['recipe'])} | {row['parameters']:,} | {row['measured_mib']} "
            f"| {row['estimated_mib']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
