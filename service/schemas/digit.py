"""Request and response bodies of /digit."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from training.signatures import NUM_CLASSES

MAX_PIXEL_SIDE = 1024


class DigitJsonImage(BaseModel):
    """One image in a JSON request: exactly one of `image` or `pixels`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"image": "iVBORw0KGgo...(base64 PNG)"},
                {"pixels": [[0, 0, 255, 255, 0], [0, 255, 0, 255, 0], [0, 0, 0, 255, 0]]},
            ]
        },
    )

    image: str | None = Field(
        None,
        description="The image file (PNG, JPEG, GIF, BMP, WebP, TIFF) in base64, optionally as "
        "a data: URL",
        max_length=16 * 1024 * 1024,
    )
    pixels: list[Annotated[list[float], Field(max_length=MAX_PIXEL_SIDE)]] | None = Field(
        None,
        description="Greyscale pixel rows (0..1 or 0..255, either polarity), e.g. 28x28; "
        f"at most {MAX_PIXEL_SIDE} a side, and a request at most as many numbers in all as "
        "PERCEPTRON_MAX_BATCH_IMAGES images of 28x28 (200,704 by default)",
        max_length=MAX_PIXEL_SIDE,
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> DigitJsonImage:
        if (self.image is None) == (self.pixels is None):
            raise ValueError("give exactly one of 'image' (base64) or 'pixels' (rows of numbers)")
        if self.pixels is not None:
            widths = {len(row) for row in self.pixels}
            if not self.pixels or len(widths) != 1 or 0 in widths:
                raise ValueError("pixels must be a non-empty rectangle: rows of equal length")
        return self


class DigitPrediction(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "digit": 7,
                    "probability": 0.998,
                    "probabilities": [0.0, 0.0, 0.001, 0.0, 0.0, 0.0, 0.0, 0.998, 0.0, 0.001],
                    "model": "digit",
                    "model_version": 1,
                }
            ]
        }
    )

    digit: int = Field(ge=0, le=9, description="The most probable digit")
    probability: float = Field(ge=0, le=1, description="Its probability")
    probabilities: list[float] = Field(
        min_length=NUM_CLASSES, max_length=NUM_CLASSES, description="Probability of 0..9"
    )
    model: str
    model_version: int
    uncertain: bool = Field(
        False,
        description="True when the model is unsure of this answer (its highest probability is "
        "under the served version's `reject.uncertain_below`), or when the picture may hold "
        "several digits side by side; the digit is still its best guess",
    )
    reason: str | None = Field(
        None, description="Why the answer is uncertain, in a few words (only when it is)"
    )
    preprocessed_image: str | None = Field(
        None,
        description="The 28x28 image the model saw, as a PNG data URL (with "
        "?include_preprocessed=true)",
    )


class DigitBatchPrediction(BaseModel):
    results: list[DigitPrediction] = Field(description="One prediction per image, in order")
