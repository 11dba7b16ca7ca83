"""POST /mpg: predict fuel economy for one car or a list; GET /mpg/features describes a car."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from service.errors import InvalidInput, ServiceError
from service.http.bodies import json_body, mpg_json_values, parse_cars
from service.http.deps import PredictionAccess, RegistryDep, serving_for_prediction
from service.http.error_handlers import error_responses
from service.http.openapi import inline_schema, json_request_body
from service.schemas.mpg import (
    Car,
    CarFeatureInfo,
    CarFeaturesInfo,
    MpgBatchPrediction,
    MpgPrediction,
)
from service.usecases import mpg
from training.cars import CAR_FEATURES, ORIGINS

router = APIRouter(tags=["mpg"])

EXAMPLE_CARS_FILE = Path(__file__).resolve().parent.parent / "example_cars.json"

_ONE_CAR = inline_schema(Car)
REQUEST_BODY = json_request_body(
    {"oneOf": [_ONE_CAR, {"type": "array", "items": _ONE_CAR, "minItems": 1}]},
    "One car, or a list of cars for a batch",
)


@router.post(
    "/mpg",
    summary="Predict a car's fuel economy",
    response_model=MpgPrediction | MpgBatchPrediction,
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def predict_mpg(request: Request) -> MpgPrediction | MpgBatchPrediction:
    """Takes a car's cylinders, displacement (cubic inches), horsepower, weight (lbs),
    acceleration (seconds 0-60 mph), model year and origin and answers its miles per gallon.
    Values outside the training data are accepted with a warning naming the feature."""
    serving = serving_for_prediction(request)
    max_cars = serving.settings.max_batch_cars
    body = await json_body(
        request,
        max_values=mpg_json_values(max_cars),
        limit_reason=f"{max_cars:,} cars of {len(CAR_FEATURES)} features, "
        "PERCEPTRON_MAX_BATCH_CARS",
        too_many=InvalidInput,
    )
    cars, batch = await serving.json_workers.parse(body, parse_cars, max_cars)
    predictions = await mpg.predict(cars, serving.registry, serving.metrics, endpoint="/mpg")
    return MpgBatchPrediction(results=predictions) if batch else predictions[0]


@cache
def _example_cars() -> list[dict[str, Any]]:
    cars: list[dict[str, Any]] = json.loads(EXAMPLE_CARS_FILE.read_text(encoding="utf-8"))
    return cars


@router.get(
    "/mpg/features",
    summary="Describe the car features /mpg takes",
    dependencies=[PredictionAccess],
)
async def car_features(registry: RegistryDep) -> CarFeaturesInfo:
    """Units, accepted ranges, the range the served version was trained on, and real cars from
    the data set (for forms and examples). `accepted_ranges` is authoritative: every value /mpg
    accepts; `minimum` and `maximum` bound one of those ranges, in the spelling of `examples`
    and `training_range`."""
    try:
        ranges = registry.get("mpg").metadata.get("feature_ranges") or {}
    except ServiceError:
        ranges = {}
    features = [
        CarFeatureInfo(
            name=f.name,
            label=f.label,
            unit=f.unit,
            # The first accepted spelling: every value between them is one /mpg takes.
            minimum=f.accepted_ranges()[0][0],
            maximum=f.accepted_ranges()[0][1],
            accepted_ranges=[list(r) for r in f.accepted_ranges()],
            integer=f.integer,
            description=f.description,
            training_range=ranges.get(f.name),
        )
        for f in CAR_FEATURES
    ]
    return CarFeaturesInfo(features=features, origins=list(ORIGINS), examples=_example_cars())
