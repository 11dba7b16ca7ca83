"""Response bodies of /number (its requests are /digit's: `service.schemas.digit`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NumberDigitReading(BaseModel):
    digit: int = Field(ge=0, le=9, description="The most probable digit")
    probability: float = Field(ge=0, le=1, description="Its probability")
    box: list[int] = Field(
        min_length=4,
        max_length=4,
        description="Where the digit is: x, y, width, height in the picture's pixels (after "
        "its EXIF rotation), x from the left and y from the top",
    )


class NumberReading(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "361",
                    "digits": [
                        {"digit": 3, "probability": 0.999, "box": [22, 40, 48, 70]},
                        {"digit": 6, "probability": 0.997, "box": [81, 36, 45, 74]},
                        {"digit": 1, "probability": 0.998, "box": [140, 38, 17, 71]},
                    ],
                    "probability": 0.994,
                    "model": "digit",
                    "model_version": 1,
                }
            ]
        }
    )

    number: str = Field(description="The digits read, left to right (leading zeros kept)")
    digits: list[NumberDigitReading] = Field(min_length=1, description="Each digit, left to right")
    probability: float = Field(
        ge=0,
        le=1,
        description="The probability that every digit is right: the product of the digits' "
        "probabilities (a reading is only as sure as its least sure digit, and less)",
    )
    model: str
    model_version: int


class NumberBatchReading(BaseModel):
    results: list[NumberReading] = Field(description="One reading per image, in order")
