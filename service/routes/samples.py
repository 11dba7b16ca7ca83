"""Feedback and its review: POST /digit/feedback stores a labelled example (open like the
predictions, rate-limited per address); /samples lists, reviews, exports and deletes them
(admin only)."""

from __future__ import annotations

import io
import json
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from service import vision
from service.database.tables import SampleRow
from service.errors import NotFound, PayloadTooLarge, invalid_input
from service.http.bodies import UPLOAD_FIELD, read_feedback
from service.http.deps import AdminAccess, serving_for_prediction
from service.http.error_handlers import error_responses
from service.http.rate_limit import RateLimiter
from service.http.security import check_same_site
from service.samples.store import SampleQuota, SampleStatus, SampleStore
from service.schemas.samples import (
    DigitFeedbackJson,
    FeedbackFields,
    Sample,
    SampleCounts,
    SamplePage,
    SampleReview,
)

feedback_router = APIRouter(tags=["samples"])
router = APIRouter(prefix="/samples", tags=["samples"], dependencies=[AdminAccess])

SampleId = Annotated[str, Path(description="Sample id", pattern="^[0-9a-f]{32}$")]
EXPORT_NAME = "perceptron-samples.npz"


def _store(request: Request) -> SampleStore:
    store: SampleStore = request.app.state.sample_store
    return store


@feedback_router.post(
    "/digit/feedback",
    summary="Say which digit an image really shows",
    status_code=201,
    response_model=Sample,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503, 507),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The image as for /digit (one multipart file in 'file' with the "
            "fields as form fields, or JSON with base64 'image' or 'pixels') and 'label'.",
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            UPLOAD_FIELD: {"type": "string", "format": "binary"},
                            **FeedbackFields.model_json_schema()["properties"],
                        },
                        "required": [UPLOAD_FIELD, "label"],
                    }
                },
                "application/json": {"schema": DigitFeedbackJson.model_json_schema()},
            },
        }
    },
)
async def send_feedback(request: Request) -> Sample:
    """Stores the image with its true label as a new sample for an admin to review: the 28x28
    image the model saw and the original upload. Nothing else a person sends is stored.
    Refused (403) when another site's page sends it, and (507) when the store holds
    `feedback_max_samples` samples or `feedback_max_bytes` bytes of images."""
    serving = serving_for_prediction(request)
    settings, metrics = serving.settings, serving.metrics
    check_same_site(request, settings, "send feedback")
    limiter: RateLimiter = request.app.state.feedback_limiter
    await limiter.take(request.client.host if request.client else None)
    source, raw_fields, typed = await read_feedback(
        request, max_images=settings.max_batch_images, workers=serving.json_workers
    )
    try:
        # JSON fields are typed: strict, as JSON, so "3", 3.0 and true are not labels. Form
        # fields are text, parsed as numbers.
        fields = (
            FeedbackFields.model_validate_json(json.dumps(raw_fields), strict=True)
            if typed
            else FeedbackFields.model_validate(raw_fields)
        )
    except ValidationError as exc:
        raise invalid_input(exc.errors(include_url=False)) from None
    if source.size > settings.max_feedback_image_bytes and isinstance(source.data, bytes):
        raise PayloadTooLarge(
            f"the image is {source.size:,} bytes; feedback keeps images of at most "
            f"{settings.max_feedback_image_bytes:,} bytes (PERCEPTRON_MAX_FEEDBACK_IMAGE_BYTES)"
        )
    tensors = (await serving.admission.preprocess([source])).tensors
    original, original_type = await run_in_threadpool(_original, source.data)
    row = await run_in_threadpool(
        _store(request).add,
        label=fields.label,
        predicted=fields.predicted,
        model_version=fields.model_version,
        source=fields.source,
        image_png=vision.to_png(tensors[0]),
        original=original,
        original_type=original_type,
        quota=SampleQuota(settings.feedback_max_samples, settings.feedback_max_bytes),
    )
    agreed = "unknown" if fields.predicted is None else str(fields.predicted == fields.label)
    metrics.feedback.labels(fields.source.value, agreed.lower()).inc()
    return Sample.of(row, admin=False)


def _original(data: bytes | np.ndarray) -> tuple[bytes, str]:
    """The upload as sent, with its media type; JSON pixels are kept as a greyscale PNG."""
    if isinstance(data, bytes):
        return data, vision.media_type(data)
    return vision.to_png(data), "image/png"


@router.get(
    "", summary="List samples", response_model=SamplePage, responses=error_responses(401, 403, 422)
)
async def list_samples(
    request: Request,
    status: Annotated[SampleStatus | None, Query(description="Only this status")] = None,
    label: Annotated[int | None, Query(ge=0, le=9, description="Only this label")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SamplePage:
    """The newest first; `total` counts every sample that matches the filters."""
    rows, total = await run_in_threadpool(
        _store(request).page, status=status, label=label, limit=limit, offset=offset
    )
    return SamplePage(
        items=[Sample.of(row, admin=True) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get("/counts", summary="Samples per status and label", response_model=SampleCounts)
async def count_samples(request: Request) -> SampleCounts:
    return SampleCounts(**await run_in_threadpool(_store(request).counts))


@router.get(
    "/export",
    summary="Accepted samples as an .npz in the MNIST layout",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(401, 403)},
)
async def export_samples(request: Request) -> Response:
    """`x`: N x 28 x 28 uint8, white ink on black as in MNIST; `y`: N uint8 labels. Accepted
    samples only, oldest first. Load with `numpy.load(path)`."""
    buffer = io.BytesIO()
    await run_in_threadpool(_store(request).export_accepted, buffer)
    return Response(
        buffer.getvalue(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_NAME}"'},
    )


async def _existing(request: Request, sample_id: str) -> SampleRow:
    row = await run_in_threadpool(_store(request).get, sample_id)
    if row is None:
        raise NotFound(f"no sample {sample_id!r}")
    return row


@router.get(
    "/{sample_id}",
    summary="One sample",
    response_model=Sample,
    responses=error_responses(401, 403, 404, 422),
)
async def get_sample(request: Request, sample_id: SampleId) -> Sample:
    return Sample.of(await _existing(request, sample_id), admin=True)


@router.get(
    "/{sample_id}/image.png",
    summary="The 28x28 image the model saw",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(401, 403, 404, 422)},
)
async def sample_image(request: Request, sample_id: SampleId) -> Response:
    image = await run_in_threadpool(_store(request).image, sample_id)
    if image is None:
        raise NotFound(f"no sample {sample_id!r}")
    return Response(image, media_type="image/png", headers=_PRIVATE)


@router.get(
    "/{sample_id}/original",
    summary="The original upload",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **error_responses(401, 403, 404, 422)},
)
async def sample_original(request: Request, sample_id: SampleId) -> Response:
    found = await run_in_threadpool(_store(request).original, sample_id)
    if found is None:
        raise NotFound(f"no sample {sample_id!r}")
    original, media_type = found
    return Response(original, media_type=media_type, headers=_PRIVATE)


_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
"""A person's upload: never kept by a shared cache, never sniffed as something else."""


@router.patch(
    "/{sample_id}",
    summary="Review a sample: accept, reject or relabel",
    response_model=Sample,
    responses=error_responses(400, 401, 403, 404, 415, 422),
)
async def review_sample(
    request: Request, sample_id: SampleId, review: Annotated[SampleReview, Body()]
) -> Sample:
    row = await run_in_threadpool(
        _store(request).review, sample_id, status=review.status, label=review.label
    )
    if row is None:
        raise NotFound(f"no sample {sample_id!r}")
    return Sample.of(row, admin=True)


@router.delete(
    "/{sample_id}",
    summary="Delete a sample and its images",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_sample(request: Request, sample_id: SampleId) -> Response:
    if not await run_in_threadpool(_store(request).delete, sample_id):
        raise NotFound(f"no sample {sample_id!r}")
    return Response(status_code=204)
