"""Request and response bodies of /mpg. The car's fields are generated from
`training.cars.CAR_FEATURES`, the one definition of a car's features."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)
from pydantic.config import JsonDict

from training.cars import (
    CAR_FEATURES,
    EXAMPLE_CAR,
    FEATURES_BY_NAME,
    MODEL_YEAR_FULL,
    MODEL_YEAR_SHORT,
    ORIGINS,
    CarFeature,
    model_year_offset,
    origin_code,
)

ORIGIN_SPELLINGS: tuple[str, ...] = (
    *ORIGINS,
    *(o.upper() for o in ORIGINS),
    *(o.capitalize() for o in ORIGINS),
)
"""The origin names /mpg accepts, exactly as its schema lists them."""


def _origin(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)} or a code 1-3")
    if isinstance(value, str) and value not in ORIGIN_SPELLINGS:
        # Only the documented spellings: " japan" or "2" would pass a schema-blind parser, and
        # a client validating against the schema would then disagree with the service.
        raise ValueError(
            f"unknown origin {value!r}: use one of {', '.join(ORIGINS)} (lower, upper or title "
            "case) or a code 1-3"
        )
    return origin_code(value)


_MODEL_YEAR_RANGES = FEATURES_BY_NAME["model_year"].accepted_ranges()


def _span(low: float, high: float) -> str:
    return f"{low:g}-{high:g}"


def _model_year(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("model_year must be a whole number such as 76 or 1976")
    if any(low <= value <= high for low, high in _MODEL_YEAR_RANGES):
        return model_year_offset(value)
    short, full = MODEL_YEAR_SHORT, MODEL_YEAR_FULL
    raise ValueError(
        f"model_year must be {_span(*short)} (years since 1900, as in the data set) "
        f"or {_span(*full)}"
    )


_ORIGIN_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 3},
        {
            "type": "string",
            "enum": list(ORIGIN_SPELLINGS),
        },
    ],
    "description": "Region of manufacture: usa, europe or japan (or the data set's code 1-3)",
    "examples": ["japan"],
}
_MODEL_YEAR_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": int(low), "maximum": int(high)}
        for low, high in _MODEL_YEAR_RANGES
    ],
    "description": "Model year: 70-82 style (years since 1900) or 1970-1982 style",
    "examples": [76],
}


def _integral(value: Any) -> Any:
    """2.0 is the integer 2 (JSON Schema's `integer` allows it, and some clients write every
    number with a point); 2.5, "2" and true stay what they are and are refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _car_field(feature: CarFeature) -> tuple[Any, Any]:
    if feature.name == "origin":
        return Annotated[int, BeforeValidator(_origin), WithJsonSchema(_ORIGIN_SCHEMA)], Field()
    if feature.name == "model_year":
        return (
            Annotated[int, BeforeValidator(_model_year), WithJsonSchema(_MODEL_YEAR_SCHEMA)],
            Field(),
        )
    unit = f" ({feature.unit})" if feature.unit else ""
    return (
        Annotated[int, BeforeValidator(_integral)] if feature.integer else float,
        Field(
            ge=feature.minimum,
            le=feature.maximum,
            strict=True,
            allow_inf_nan=False,
            description=f"{feature.description}{unit}",
        ),
    )


_EXAMPLE_CAR: JsonDict = {**EXAMPLE_CAR, "origin": ORIGINS[int(EXAMPLE_CAR["origin"]) - 1]}

Car: type[BaseModel] = create_model(
    "Car",
    __config__=ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [_EXAMPLE_CAR]},
    ),
    __doc__="A car's features, as the Auto MPG data set records them.",
    **{feature.name: _car_field(feature) for feature in CAR_FEATURES},  # type: ignore[call-overload]
)


class MpgPrediction(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mpg": 27.3,
                    "litres_per_100km": 8.62,
                    "model": "mpg",
                    "model_version": 1,
                    "warnings": [],
                }
            ]
        }
    )

    mpg: float = Field(description="Predicted fuel economy in US miles per gallon")
    litres_per_100km: float = Field(description="The same in litres per 100 km")
    model: str
    model_version: int
    warnings: list[str] = Field(
        description="Features outside the range the model was trained on (accepted, but the "
        "prediction is an extrapolation)"
    )


class MpgBatchPrediction(BaseModel):
    results: list[MpgPrediction] = Field(description="One prediction per car, in order")


class CarFeatureInfo(BaseModel):
    name: str
    label: str
    unit: str
    minimum: float = Field(
        description="The lowest value of the first accepted range (the spelling `examples` and "
        "`training_range` use): a form bounded by minimum and maximum sends only accepted "
        "values, but accepted_ranges may allow more"
    )
    maximum: float = Field(description="The highest value of the first accepted range")
    integer: bool
    description: str
    accepted_ranges: list[list[float]] = Field(
        description="Authoritative: every value /mpg accepts, as inclusive [low, high] ranges, "
        "one per spelling (model_year: 76 or 1976); [minimum, maximum] is the first"
    )
    training_range: list[float] | None = Field(
        None, description="Range seen in training by the served version, in the model's encoding"
    )


class CarFeaturesInfo(BaseModel):
    features: list[CarFeatureInfo]
    origins: list[str]
    examples: list[dict[str, Any]] = Field(description="Real cars from the data set")
