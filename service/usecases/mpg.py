"""Predicting fuel economy for validated cars (`service.http.bodies.parse_cars` reads them),
with warnings for extrapolation."""

from __future__ import annotations

import time

import numpy as np
from pydantic import BaseModel

from service.metrics import ServiceMetrics
from service.registry import LoadedVersion, ModelRegistry
from service.schemas.mpg import MpgPrediction
from training.cars import FEATURE_NAMES, litres_per_100km, training_range_text, value_text

MIN_REPORTED_MPG = 1.0
"""Far outside the training data a network can extrapolate to zero or below; no car does."""


def warnings_for(car: BaseModel, model: LoadedVersion) -> list[str]:
    """One warning per feature outside the range the served version was trained on."""
    ranges = model.metadata.get("feature_ranges") or {}
    warnings = []
    for name in FEATURE_NAMES:
        bounds = ranges.get(name)
        value = getattr(car, name)
        if bounds and not bounds[0] <= value <= bounds[1]:
            warnings.append(
                f"{name} {value_text(name, value)} is outside the range the model was trained "
                f"on, {training_range_text(name, *bounds)}; the prediction is an extrapolation"
            )
    return warnings


async def predict(
    cars: list[BaseModel], registry: ModelRegistry, metrics: ServiceMetrics, *, endpoint: str
) -> list[MpgPrediction]:
    started = time.perf_counter()
    features = {
        name: np.fromiter((getattr(car, name) for car in cars), np.float32, len(cars))
        for name in FEATURE_NAMES
    }
    model = registry.get("mpg")
    outputs = await model.infer(features)
    predictions = []
    for car, mpg in zip(cars, outputs["mpg"], strict=True):
        value = float(mpg)
        warnings = warnings_for(car, model)
        if not value >= MIN_REPORTED_MPG:
            warnings.append(
                f"the model's raw prediction {value:.2f} mpg is implausible for these "
                f"features; reported as {MIN_REPORTED_MPG}"
            )
            value = MIN_REPORTED_MPG
        predictions.append(
            MpgPrediction(
                mpg=round(value, 2),
                litres_per_100km=round(litres_per_100km(value), 2),
                model="mpg",
                model_version=model.version,
                warnings=warnings,
            )
        )
    version = str(model.version)
    metrics.predictions.labels("mpg", version).inc(len(predictions))
    metrics.prediction_latency.labels(endpoint, "mpg", version).observe(
        time.perf_counter() - started
    )
    return predictions
