"""Bodies of POST /digit/feedback and the /samples endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.database.tables import SampleRow
from service.samples.store import SampleSource, SampleStatus
from service.schemas.digit import DigitJsonImage


class FeedbackFields(BaseModel):
    """What a person says about an image: the digit it shows, and what the service answered."""

    model_config = ConfigDict(extra="forbid")

    label: int = Field(ge=0, le=9, description="The digit the image really shows")
    predicted: int | None = Field(None, ge=0, le=9, description="What the service answered")
    model_version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="The version that answered"
    )
    source: SampleSource = Field(
        SampleSource.upload, description="Where the image came from: canvas, upload or camera"
    )


class DigitFeedbackJson(DigitJsonImage, FeedbackFields):
    """JSON feedback: the image as for /digit (`image` or `pixels`) and the fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"image": "iVBORw0KGgo...", "label": 7, "predicted": 1, "source": "canvas"}
            ]
        },
    )


class Sample(BaseModel):
    id: str
    label: int
    predicted: int | None
    model_version: int | None
    source: SampleSource
    status: SampleStatus
    created_at: datetime
    reviewed_at: datetime | None
    image_url: str = Field(description="The 28x28 image the model saw, as a PNG")
    original_url: str | None = Field(
        None, description="The original upload (admin only; absent in the answer to feedback)"
    )

    @classmethod
    def of(cls, row: SampleRow, *, admin: bool) -> Sample:
        return cls(
            id=row.id,
            label=row.label,
            predicted=row.predicted,
            model_version=row.model_version,
            source=SampleSource(row.source),
            status=SampleStatus(row.status),
            created_at=row.created_at,
            reviewed_at=row.reviewed_at,
            image_url=f"/samples/{row.id}/image.png",
            original_url=f"/samples/{row.id}/original" if admin else None,
        )


class SamplePage(BaseModel):
    items: list[Sample]
    total: int = Field(description="Samples matching the filters, on every page")
    limit: int
    offset: int


class SampleCounts(BaseModel):
    """Samples per status, then per label ("0".."9")."""

    new: dict[int, int]
    accepted: dict[int, int]
    rejected: dict[int, int]


class SampleReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SampleStatus | None = None
    label: int | None = Field(None, ge=0, le=9, strict=True)

    @model_validator(mode="after")
    def _something(self) -> SampleReview:
        if self.status is None and self.label is None:
            raise ValueError("give 'status' (new, accepted, rejected), 'label' (0-9), or both")
        return self
