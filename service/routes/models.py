"""The models: what is on disk and served, and pinning a version (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from service.errors import NotFound
from service.http.deps import AdminAccess, IsAdmin, RegistryDep
from service.http.error_handlers import error_responses
from service.registry import ModelRegistry, ModelSlot
from service.schemas.models import (
    ModelInfo,
    ModelList,
    ServedVersionRequest,
    SignatureInfo,
    TensorInfo,
    VersionInfo,
)
from training import versions as model_versions
from training.signatures import SIGNATURES, Signature

router = APIRouter(prefix="/models", tags=["models"])

ModelNamePath = Path(description="Model name: digit or mpg", max_length=64)


def signature_info(signature: Signature) -> SignatureInfo:
    def tensors(specs: Any) -> list[TensorInfo]:
        return [
            TensorInfo(name=s.name, dtype=s.dtype, shape=[-1 if d is None else d for d in s.shape])
            for s in specs
        ]

    return SignatureInfo(inputs=tensors(signature.inputs), outputs=tensors(signature.outputs))


def model_info(slot: ModelSlot, *, admin: bool) -> ModelInfo:
    """The model as `/models` shows it; the details behind its errors only to `admin`."""
    versions = []
    for record in sorted(slot.versions.values(), key=lambda r: r.version, reverse=True):
        meta = record.metadata or {}
        versions.append(
            VersionInfo(
                version=record.version,
                state=record.state.value,
                error=record.error.message if record.error else None,
                error_code=record.error.code if record.error else None,
                error_detail=record.error.detail if record.error and admin else None,
                created_at=meta.get("created_at"),
                metrics=meta.get("metrics"),
                hyperparameters=meta.get("hyperparameters"),
                promoted=model_versions.is_promoted(record.metadata),
                promotion_reason=model_versions.promotion_reason(record.metadata),
                promotion=meta.get("promotion"),
                parameters=meta.get("parameters"),
                training_seconds=meta.get("training_seconds"),
                device=meta.get("device"),
                reject=meta.get("reject"),
            )
        )
    fallback = slot.serving.runtime_fallback if slot.serving else None
    return ModelInfo(
        name=slot.name,
        state=slot.state.value,
        served_version=slot.serving.version if slot.serving else None,
        pinned_version=slot.pinned,
        pinned_by=slot.pinned_by,
        unpinned_version=slot.unpinned,
        error=slot.error.message if slot.error else None,
        error_code=slot.error.code if slot.error else None,
        error_detail=slot.error.detail if slot.error and admin else None,
        runtime=slot.serving.runtime if slot.serving else None,
        runtime_fallback=fallback.message if fallback else None,
        runtime_fallback_code=fallback.code if fallback else None,
        runtime_fallback_detail=fallback.detail if fallback and admin else None,
        signature=signature_info(SIGNATURES[slot.name]),
        versions=versions,
    )


def _slot(registry: ModelRegistry, name: str) -> ModelSlot:
    slot = registry.slots.get(name)
    if slot is None:
        raise NotFound(f"unknown model {name!r}: the models are {', '.join(registry.slots)}")
    return slot


@router.get("", summary="List the models")
async def list_models(registry: RegistryDep, admin: IsAdmin) -> ModelList:
    """Every model; `error_detail` (exceptions, paths) only for administrators."""
    return ModelList(models=[model_info(slot, admin=admin) for slot in registry.slots.values()])


@router.get("/{name}", summary="Describe a model", responses=error_responses(404))
async def get_model(registry: RegistryDep, admin: IsAdmin, name: str = ModelNamePath) -> ModelInfo:
    """Versions on disk with their metrics and hyperparameters, the served and pinned
    versions, the state, and the serving signature; why a version failed to load in stable
    words, and the exception behind it (`error_detail`) for administrators only."""
    return model_info(_slot(registry, name), admin=admin)


@router.put(
    "/{name}/served-version",
    summary="Pin the served version (roll back or forward)",
    dependencies=[AdminAccess],
    responses=error_responses(400, 401, 403, 404, 409, 415, 422),
)
async def pin_version(
    body: ServedVersionRequest, registry: RegistryDep, name: str = ModelNamePath
) -> ModelInfo:
    """Serves `version` from now on, whatever newer versions appear, until the pin is
    removed. Answers once the version is loaded and serving; 409 if it cannot be loaded."""
    slot = _slot(registry, name)
    await registry.set_pin(slot.name, body.version)
    return model_info(slot, admin=True)


@router.delete(
    "/{name}/served-version",
    summary="Remove the pin",
    dependencies=[AdminAccess],
    responses=error_responses(401, 403, 404, 415),
)
async def unpin_version(registry: RegistryDep, name: str = ModelNamePath) -> ModelInfo:
    """Back to the policy: the newest promoted version (or the settings' pin)."""
    slot = _slot(registry, name)
    await registry.set_pin(slot.name, None)
    return model_info(slot, admin=True)
