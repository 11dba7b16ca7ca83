"""Classifying digit images: the request's images admitted and preprocessed, the model call, and
the answer per image."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

from service import vision
from service.admission import DigitSource, ImageAdmission
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.schemas.digit import DigitPrediction
from service.usecases.reject import RejectThresholds, judge

PROBABILITY_DECIMALS = 6


async def classify(
    sources: Sequence[DigitSource],
    admission: ImageAdmission,
    registry: ModelRegistry,
    metrics: ServiceMetrics,
    *,
    include_preprocessed: bool,
    endpoint: str,
) -> list[DigitPrediction]:
    started = time.perf_counter()
    prepared = await admission.preprocess(sources)
    tensors = prepared.tensors
    model = registry.get("digit")
    outputs = await model.infer({"image": tensors})
    probabilities = outputs["probabilities"]
    thresholds = RejectThresholds.from_metadata(model.metadata)
    predictions = []
    for index, row in enumerate(probabilities):
        try:
            judgement = judge(row, thresholds, possible_digits=prepared.possible_digits[index])
        except vision.ImageError as exc:  # no digit, or no one digit of several
            raise (exc.naming(sources[index].label) if len(sources) > 1 else exc) from None
        digit = int(row.argmax())
        rounded = [round(float(p), PROBABILITY_DECIMALS) for p in row]
        image = (
            "data:image/png;base64,"
            + base64.b64encode(vision.to_png(tensors[index])).decode("ascii")
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
