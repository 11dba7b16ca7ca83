"""Predicting fuel economy for validated cars, with warnings for extrapolation."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from service.errors import InvalidInput, invalid_input
from service.metrics import ServiceMetrics
from service.registry import LoadedVersion, ModelRegistry
from service.schemas.mpg import Car, MpgPrediction
from training.cars import FEATURE_NAMES, litres_per_100km, training_range_text, value_text

MIN_REPORTED_MPG = 1.0
"""Far outside the training data a network can extrapolate to zero or below; no car does."""

_ONE_CAR: TypeAdapter[Any] = TypeAdapter(Car)
_CARS: TypeAdapter[Any] = TypeAdapter(list[Car])


def parse_cars(document: Any, max_cars: int) -> tuple[list[BaseModel], bool]:
    """Validates one car (an object) or a batch (a list); returns the cars and whether the
    request was a batch."""
    try:
        if isinstance(document, list):
            if not document:
                raise InvalidInput("the list of cars is empty")
            if len(document) > max_cars:
                raise InvalidInput(f"{len(document)} cars in one request; the limit is {max_cars}")
            return list(_CARS.validate_python(document)), True
        if not isinstance(document, dict):
            raise InvalidInput("send a car as a JSON object, or a list of cars")
        return [_ONE_CAR.validate_python(document)], False
    except ValidationError as exc:
        raise invalid_input(exc.errors(include_url=False)) from None


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
