"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.errors import ModelUnavailable
from service.http.deps import MetricsDep, RegistryDep
from service.http.error_handlers import error_responses
from service.metrics import exposition
from service.schemas.models import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health()


@router.get("/readyz", summary="Readiness: every model serves", responses=error_responses(503))
async def readyz(registry: RegistryDep) -> Readiness:
    states = {name: slot.state.value for name, slot in registry.slots.items()}
    if not registry.ready():
        raise ModelUnavailable("not ready: " + registry.waiting_for())
    return Readiness(ready=True, models=states)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(exposition(metrics), media_type=CONTENT_TYPE_LATEST)
