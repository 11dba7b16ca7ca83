"""Bodies of /models and the health endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TensorInfo(BaseModel):
    name: str
    dtype: str
    shape: list[int] = Field(description="-1 is the batch dimension")


class SignatureInfo(BaseModel):
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


class VersionInfo(BaseModel):
    version: int
    state: str = Field(description="serving, loading, failed or on_disk")
    error: str | None = Field(None, description="Why it failed to load, in stable words")
    error_code: str | None = Field(None, description="load_failed when it failed to load")
    error_detail: str | None = Field(
        None, description="The exception that stopped it loading: to administrators only"
    )
    created_at: str | None = None
    metrics: dict[str, Any] | None = Field(None, description="Test-set metrics from metadata.json")
    hyperparameters: dict[str, Any] | None = None
    promoted: bool = Field(
        description="Whether the serving policy may choose this version when nothing is pinned"
    )
    promotion_reason: str = Field(description="Why it is promoted or not, in words")
    promotion: dict[str, Any] | None = Field(
        None, description="The promotion record from metadata.json (policy, metric, comparison)"
    )
    parameters: int | None = None
    training_seconds: float | None = None
    device: str | None = None
    reject: dict[str, Any] | None = Field(
        None,
        description="digit: the reject option's thresholds from metadata.json: below "
        "`no_digit_below` the highest probability means no digit (POST /digit answers 422 "
        "no_digit_found), below `uncertain_below` an uncertain answer. Clients of the tensor "
        "endpoints apply them to the probabilities they receive",
    )


class ModelInfo(BaseModel):
    name: str
    state: str = Field(description="loading, available, failed or unavailable")
    served_version: int | None
    pinned_version: int | None = Field(None, description="The pin in force (API or settings)")
    pinned_by: Literal["api", "settings"] | None = Field(
        None,
        description="api: pinned with PUT .../served-version (DELETE removes it); settings: "
        "PERCEPTRON_PINNED_VERSIONS (only a restart with other settings removes it)",
    )
    unpinned_version: int | None = Field(
        None,
        description="The version served once the API's pin is removed: the settings' pin, else "
        "the newest promoted version that loads",
    )
    error: str | None = Field(None, description="Why no version serves, in stable words")
    error_code: str | None = Field(
        None,
        description="no_versions, no_version_loads, no_eligible_version or pinned_version_missing",
    )
    error_detail: str | None = Field(
        None, description="Paths and exceptions behind the error: to administrators only"
    )
    runtime: Literal["litert", "tensorflow"] | None = Field(
        None, description="What computes the served version's answers (PERCEPTRON_MODEL_RUNTIME)"
    )
    runtime_fallback: str | None = Field(
        None,
        description="Why TensorFlow serves although LiteRT was asked for, in stable words",
    )
    runtime_fallback_code: str | None = Field(
        None,
        description="litert_conversion_failed, litert_disagrees, litert_failed or "
        "litert_unavailable",
    )
    runtime_fallback_detail: str | None = Field(
        None, description="The converter's error or the difference found: to administrators only"
    )
    signature: SignatureInfo
    versions: list[VersionInfo] = Field(description="Every version on disk, newest first")


class ModelList(BaseModel):
    models: list[ModelInfo]


class ServedVersionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 1}]})

    version: int = Field(
        ge=1,
        le=2**31 - 1,
        strict=True,
        description='The version to serve from now on (a JSON integer: not true, "1" or 1.0)',
    )


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str] = Field(description="State of each model")
