"""Peak resident memory of digit training steps, against `training.cost.estimate_memory`.

Each recipe runs in a fresh process (`bench.job_memory`): the model is built and compiled as a
job builds it (`training.train`), then trained for two steps on random images; the figure is the
growth of the process's peak resident memory (`ru_maxrss`) over its level just before `fit`, so
the TensorFlow runtime and the data set, which every job pays alike, are left out. Writes the
`job-memory` section: what the constants of the estimate are fitted to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from bench import REPO
from bench.results import Section, table
from bench.servers import child_env

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipes", type=int, default=len(RECIPES), help="the first N recipes")


def run(args: argparse.Namespace) -> list[Section]:
    rows = []
    for recipe in RECIPES[: args.recipes]:
        done = subprocess.run(
            [sys.executable, "-m", "bench.job_memory", json.dumps(recipe)],
            capture_output=True, text=True, check=True, cwd=REPO, env=child_env(),
        )  # fmt: skip
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(
            [f"`{json.dumps(row['recipe'])}`", f"{row['parameters']:,}", str(row["measured_mib"]),
             str(row["estimated_mib"]), f"{row['estimated_mib'] / row['measured_mib']:.2f}"]
        )  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    columns = ("recipe", "parameters", "measured (MiB)", "estimated (MiB)", "estimated / measured")
    return [Section("job-memory", table(columns, rows, labels=1))]
