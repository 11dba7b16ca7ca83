"""What the two tensor protocols (TensorFlow Serving REST and Open Inference Protocol v2) share:
their path parameters, checking arrays against the serving signature, and one model call.

Both feed tensors straight to the model's serving signature: none of the preprocessing that
/digit and /mpg do happens here, as with TensorFlow Serving or Triton themselves.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import Path

from service.batching import Tensors
from service.errors import BadRequest
from service.metrics import ServiceMetrics
from service.registry import LoadedVersion
from service.schemas.tensors import JSON_OVERHEAD_VALUES
from service.settings import Settings
from training.signatures import Signature

ModelName = Annotated[str, Path(description="The model: digit or mpg", examples=["digit", "mpg"])]
MAX_VERSION_DIGITS = 18
"""Versions are 64-bit integers at most; a longer string names no version (and Python refuses
to convert more than 4,300 digits at all)."""
VersionNumber = Annotated[
    str,
    Path(
        description="A version number; only the served one answers",
        examples=["1"],
        json_schema_extra={"pattern": "^[0-9]+$"},
    ),
]
"""Parsed by the routes (a version that is not a number is the protocol's own error)."""


def shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def row_limit(settings: Settings, model: str) -> int:
    """Most rows one request may hold: the same limits /digit and /mpg apply."""
    return settings.max_batch_images if model == "digit" else settings.max_batch_cars


def json_value_limit(signature: Signature, max_rows: int) -> tuple[int, str]:
    """Most values a JSON request for `signature` may hold, and why: `max_rows` rows of every
    input's values (784 a row for digit, 7 for mpg), and room for names and shapes."""
    per_row = 0
    for spec in signature.inputs:
        size = 1
        for dimension in spec.shape[1:]:
            size *= dimension or 1
        per_row += size
    reason = f"{max_rows:,} rows of {per_row:,} values, PERCEPTRON_MAX_BATCH_*"
    return max_rows * per_row + JSON_OVERHEAD_VALUES, reason


def check_inputs(signature: Signature, arrays: Tensors, max_rows: int) -> int:
    """Checks every input's shape against the signature (the leading dimension is the batch) and
    that all agree on the number of rows; returns it. 400 otherwise."""
    rows: dict[str, int] = {}
    for spec in signature.inputs:
        shape = arrays[spec.name].shape
        fits = len(shape) == len(spec.shape) and all(
            want is None or want == got for want, got in zip(spec.shape, shape, strict=True)
        )
        if not fits:
            raise BadRequest(
                f"input {spec.name} has shape {list(shape)}; the model takes "
                f"{shape_text(spec.shape)} (-1: any number of rows)"
            )
        rows[spec.name] = shape[0]
    counts = set(rows.values())
    if len(counts) > 1:
        found = ", ".join(f"{name}: {n}" for name, n in rows.items())
        raise BadRequest(f"the inputs must have the same number of rows ({found})")
    count = counts.pop()
    if count == 0:
        raise BadRequest("no rows to predict: send at least one")
    if count > max_rows:
        raise BadRequest(f"{count} rows in one request; the limit is {max_rows}")
    return count


async def run_model(
    model: LoadedVersion, inputs: Tensors, metrics: ServiceMetrics, *, endpoint: str
) -> Tensors:
    """Runs checked inputs through the served version's batcher; returns the signature's
    outputs. 400 when an output is not finite (inputs far outside the training data), since
    standard JSON cannot carry NaN or infinities."""
    started = time.perf_counter()
    outputs = await model.infer(inputs)
    result = {spec.name: outputs[spec.name] for spec in model.signature.outputs}
    if not all(bool(np.isfinite(array).all()) for array in result.values()):
        raise BadRequest(
            "the model's outputs for these inputs are not finite numbers (the inputs lie far "
            "outside the data it was trained on); JSON cannot carry them"
        )
    version = str(model.version)
    rows = len(next(iter(result.values())))
    metrics.predictions.labels(model.name, version).inc(rows)
    metrics.prediction_latency.labels(endpoint, model.name, version).observe(
        time.perf_counter() - started
    )
    return result
