"""Classifying digit images: preprocessing, the model call, and the answer per image."""

from __future__ import annotations

import base64
import time

import numpy as np

from service.bodies import DigitSource
from service.decoding import DecodeGate, check_request_pixels, declared_pixels
from service.errors import ServiceError
from service.imaging import ImageError, decode_image, to_mnist_tensor, to_png
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.reject import RejectThresholds, judge
from service.schemas.digit import DigitPrediction

INLINE_PREPROCESS_PIXELS = 100_000
"""Uploads of at most this many pixels in total (a 280x280 web canvas, a few MNIST images), and
at most `inline_preprocess_bytes`, are preprocessed on the event loop: a thread hop costs more
than decoding them, and their decoding time is bounded by the pixel count (about 2 ms).
Anything larger waits for a decode slot and runs on a worker thread."""

PROBABILITY_DECIMALS = 6


class DigitImageError(ServiceError):
    """An image of the request cannot be classified; the status comes from the cause."""

    def __init__(self, source: DigitSource | None, cause: ImageError, batch: bool) -> None:
        prefix = f"{source.label}: " if batch and source else ""
        super().__init__(f"{prefix}{cause}")
        self.status = cause.status
        self.code = {413: "image_too_large", 415: "unreadable_image", 422: "no_digit_found"}.get(
            cause.status, "invalid_image"
        )


def source_pixels(sources: list[DigitSource]) -> int:
    """The pixels of all `sources` together, from the image headers (nothing is decoded)."""
    return sum(
        declared_pixels(source.data) if isinstance(source.data, bytes) else source.size
        for source in sources
    )


def preprocess(
    sources: list[DigitSource],
    max_pixels: int,
    max_request_pixels: int,
    pixels: int | None = None,
) -> np.ndarray:
    """The batch of 28x28 tensors for `sources`; raises DigitImageError for the first bad one,
    and ImageTooLarge before decoding anything when together they exceed
    `max_request_pixels` (`pixels`, when the caller has already counted them)."""
    total = source_pixels(sources) if pixels is None else pixels
    try:
        check_request_pixels(total, max_request_pixels)
    except ImageError as exc:
        raise DigitImageError(None, exc, batch=False) from None
    tensors = np.empty((len(sources), 28, 28), dtype=np.float32)
    for index, source in enumerate(sources):
        try:
            picture = (
                decode_image(source.data, max_pixels=max_pixels)
                if isinstance(source.data, bytes)
                else source.data
            )
            tensors[index] = to_mnist_tensor(picture)
        except ImageError as exc:
            raise DigitImageError(source, exc, batch=len(sources) > 1) from None
    return tensors


async def classify(
    sources: list[DigitSource],
    registry: ModelRegistry,
    metrics: ServiceMetrics,
    gate: DecodeGate,
    *,
    max_pixels: int,
    max_request_pixels: int,
    inline_bytes: int,
    include_preprocessed: bool,
    endpoint: str,
) -> list[DigitPrediction]:
    started = time.perf_counter()
    pixels = None
    if sum(source.size for source in sources) <= inline_bytes:
        # Reading the headers of a few kilobytes is cheap enough for the loop.
        pixels = source_pixels(sources)
    if pixels is not None and pixels <= INLINE_PREPROCESS_PIXELS:
        tensors = preprocess(sources, max_pixels, max_request_pixels, pixels)
    else:
        tensors = await gate.run(preprocess, sources, max_pixels, max_request_pixels, pixels)
    model = registry.get("digit")
    outputs = await model.infer({"image": tensors})
    probabilities = outputs["probabilities"]
    thresholds = RejectThresholds.from_metadata(model.metadata)
    predictions = []
    for index, row in enumerate(probabilities):
        try:
            judgement = judge(row, thresholds)
        except ImageError as exc:
            raise DigitImageError(sources[index], exc, batch=len(sources) > 1) from None
        digit = int(row.argmax())
        rounded = [round(float(p), PROBABILITY_DECIMALS) for p in row]
        image = (
            "data:image/png;base64," + base64.b64encode(to_png(tensors[index])).decode("ascii")
            if include_preprocessed
            else None
        )
        predictions.append(
            DigitPrediction(
                digit=digit,
                probability=rounded[digit],
                probabilities=rounded,
                model="digit",
                model_version=model.version,
                uncertain=judgement.uncertain,
                reason=judgement.reason,
                preprocessed_image=image,
            )
        )
        metrics.digit_classes.labels(str(digit)).inc()
    version = str(model.version)
    metrics.predictions.labels("digit", version).inc(len(predictions))
    metrics.prediction_latency.labels(endpoint, "digit", version).observe(
        time.perf_counter() - started
    )
    return predictions
