"""The BentoML 1.4 peer of `/digit`: the same SavedModel and the same preprocessing function
(`service.vision.preprocess`), in BentoML's documented composition for a request that is not
itself the batched tensor: an API service that takes the upload (`file: Path`), preprocesses it
and awaits a batchable model service (`bentoml.depends(...).to_async`), which BentoML's adaptive
batcher feeds.
Every other setting is BentoML's default (one worker per service, its own batching window).

Runs only in the bench's own environment (`make bench-venv`: `.venv-bench`, the `bench` extra),
never in the service's; `bench.servers` starts it as
`bentoml serve bentoml_digit:DigitApi` with `bench/` as the working folder and the model's folder
in `BENCH_DIGIT_MODEL`. The file is not called `service.py`: BentoML imports it as a top-level
module named after the file, which would hide the `service` package it imports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bentoml
import numpy as np

from service import vision

MODEL_PATH = os.environ.get("BENCH_DIGIT_MODEL", "models/digit/1")


@bentoml.service
class DigitModel:
    """The SavedModel's serving signature, called on batches BentoML gathers."""

    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(MODEL_PATH)
        self._function = self._loaded.signatures["serving_default"]
        self.predict(np.zeros((1, 28, 28), np.float32))  # warm-up, as ours does before ready

    @bentoml.api(batchable=True, batch_dim=(0, 0), max_batch_size=64)
    def predict(self, images: np.ndarray) -> np.ndarray:
        tensor = self._tf.convert_to_tensor(images, dtype=self._tf.float32)
        result: np.ndarray = self._function(image=tensor)["probabilities"].numpy()
        return result


@bentoml.service
class DigitApi:
    """POST /digit with a multipart `file`: the digit and its probability."""

    model = bentoml.depends(DigitModel)

    @bentoml.api
    async def digit(self, file: Path) -> dict[str, Any]:
        # Read and preprocessed on the event loop, as in BentoML's examples: the upload is a
        # local temporary file, and our /digit also preprocesses small uploads inline.
        data = file.read_bytes()  # noqa: ASYNC240
        # The default limits are PERCEPTRON_MAX_IMAGE_PIXELS's default: both decode alike.
        tensor = vision.preprocess(data)
        probabilities = await self.model.to_async.predict(tensor[np.newaxis])
        row = probabilities[0]
        return {"digit": int(row.argmax()), "probability": float(row.max())}
