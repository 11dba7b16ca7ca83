"""POST /digit: classify one image or a batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from service.http.bodies import IMAGE_MEDIA_TYPES, UPLOAD_FIELD, read_digit_sources
from service.http.deps import serving_for_prediction
from service.http.error_handlers import error_responses
from service.http.openapi import inline_schema
from service.schemas.digit import DigitBatchPrediction, DigitJsonImage, DigitPrediction
from service.usecases import digit

router = APIRouter(tags=["digit"])

_IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
_ONE_IMAGE = inline_schema(DigitJsonImage)
_JSON_SCHEMA: dict[str, Any] = {
    "oneOf": [_ONE_IMAGE, {"type": "array", "items": _ONE_IMAGE, "minItems": 1}]
}
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "One image, or several for a batch: multipart files in the 'file' field, "
    "a raw image body, or JSON (an object, or a list of objects, with base64 'image' or "
    "'pixels').",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    UPLOAD_FIELD: {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                    }
                },
                "required": [UPLOAD_FIELD],
            },
            "encoding": {UPLOAD_FIELD: {"contentType": ", ".join(IMAGE_MEDIA_TYPES)}},
        },
        **{media: _IMAGE_BODY for media in IMAGE_MEDIA_TYPES},
        "application/json": {"schema": _JSON_SCHEMA},
    },
}


@router.post(
    "/digit",
    summary="Recognise a handwritten digit",
    response_model=DigitPrediction | DigitBatchPrediction,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def recognise_digit(
    request: Request,
    include_preprocessed: bool = Query(
        False, description="Also return the 28x28 image the model saw, as a PNG data URL"
    ),
) -> DigitPrediction | DigitBatchPrediction:
    """Takes a PNG, JPEG, GIF, BMP, WebP or TIFF of a handwritten digit (dark on light or light
    on dark, any size) and answers the digit with the probability of each class. Several
    files in the `file` field, or a JSON list, make a batch answered by `results` in order."""
    serving = serving_for_prediction(request)
    max_images = serving.settings.max_batch_images
    sources, batch = await read_digit_sources(
        request, max_images=max_images, workers=serving.json_workers
    )
    predictions = await digit.classify(
        sources,
        serving.admission,
        serving.registry,
        serving.metrics,
        include_preprocessed=include_preprocessed,
        endpoint="/digit",
    )
    return DigitBatchPrediction(results=predictions) if batch else predictions[0]
