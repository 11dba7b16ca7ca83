"""POST /number: read a written number (a row of digits) in one image or a batch."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.http.bodies import read_digit_sources
from service.http.deps import serving_for_prediction
from service.http.error_handlers import error_responses
from service.routes.digit import REQUEST_BODY
from service.schemas.number import NumberBatchReading, NumberReading
from service.usecases import number

router = APIRouter(tags=["digit"])


@router.post(
    "/number",
    summary="Read a handwritten number: a row of digits, left to right",
    response_model=NumberReading | NumberBatchReading,
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def read_number(request: Request) -> NumberReading | NumberBatchReading:
    """Takes the pictures /digit takes (a canvas, paper, a photo; multipart, an image body or
    JSON) holding a row of handwritten digits: separated, nearly touching or (best effort)
    touching, of different sizes or slightly slanted. Answers the digits left to right, each
    with its probability and its box in the picture, and the probability of the whole reading.
    422 `no_digit_found` when nothing stands out, 422 `too_many_digits` past
    PERCEPTRON_MAX_NUMBER_DIGITS. Several files, or a JSON list, make a batch answered by
    `results` in order."""
    serving = serving_for_prediction(request)
    sources, batch = await read_digit_sources(
        request, max_images=serving.settings.max_batch_images, workers=serving.json_workers
    )
    readings = await number.read(
        sources,
        serving.admission,
        serving.registry,
        serving.metrics,
        max_digits=serving.settings.max_number_digits,
        endpoint="/number",
    )
    return NumberBatchReading(results=readings) if batch else readings[0]
