"""Bodies of /jobs. The hyperparameters are `training.hyperparameters`' schemas, unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from training.hyperparameters import (
    DEFAULT_PROMOTE_POLICY,
    DigitHyperparameters,
    MpgHyperparameters,
    PromotePolicy,
)


class _JobRequestBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    promote: PromotePolicy = Field(
        DEFAULT_PROMOTE_POLICY,
        description="auto: serve the new version only if its test metric is at least as good "
        "as the served one's; always; never (keep it on disk)",
    )


class DigitJobRequest(_JobRequestBase):
    model: Literal["digit"]
    hyperparameters: DigitHyperparameters = Field(default_factory=DigitHyperparameters)


class MpgJobRequest(_JobRequestBase):
    model: Literal["mpg"]
    hyperparameters: MpgHyperparameters = Field(default_factory=MpgHyperparameters)


JobRequest = Annotated[DigitJobRequest | MpgJobRequest, Field(discriminator="model")]

JOB_REQUEST_EXAMPLES = {
    "quick digit job": {
        "value": {
            "model": "digit",
            "hyperparameters": {"architecture": "mlp", "epochs": 1, "max_train_samples": 5000},
            "promote": "never",
        }
    },
    "default mpg job": {"value": {"model": "mpg", "promote": "auto"}},
}


class JobProgress(BaseModel):
    stage: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    fraction: float | None = Field(None, description="0..1 over the whole run")
    eta_s: float | None = Field(None, description="Estimated seconds left")
    total_epochs: int | None = Field(None, description="Epochs of every stage together, at most")
    stages: int | None = Field(
        None, description="Stages of the run: the networks of an mpg ensemble, one for a digit"
    )


class JobLinks(BaseModel):
    self: str
    events: str
    cancel: str


class JobSummary(BaseModel):
    """A job as stored, read straight from its database row (`JobSummary.model_validate(row)`
    with a `service.database.tables.JobRow`): each field is a column of that table, and
    tests/jobs/test_job_record.py fails when a column is added there and not here."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    model: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    promote: str
    hyperparameters: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False
    worker: str | None = None
    device: str | None = Field(None, description="CPU, or the GPU the worker trained on")
    progress: JobProgress | None = None
    version: int | None = Field(None, description="The exported version, once succeeded")
    metrics: dict[str, Any] | None = Field(None, description="Its test-set metrics")
    promotion: dict[str, Any] | None = Field(None, description="Whether it is served, and why")
    error: str | None = None
    error_detail: str | None = Field(
        None, description="The exception behind `error` (administrators only; null otherwise)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def links(self) -> JobLinks:
        return JobLinks(
            self=f"/jobs/{self.id}",
            events=f"/jobs/{self.id}/events",
            cancel=f"/jobs/{self.id}/cancel",
        )


class Job(JobSummary):
    history: list[dict[str, Any]] = Field(
        default_factory=list, description="Per-epoch loss and metrics so far"
    )


class JobList(BaseModel):
    jobs: list[JobSummary]
    total: int
    limit: int
    offset: int
