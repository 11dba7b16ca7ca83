"""Dependencies the routes share, as `Annotated` aliases.

All are `async def` although none awaits: FastAPI runs a plain `def` dependency on its thread
pool, a thread hop per dependency per request that costs more than the work itself.

The prediction routes declare none: their first line is `serving_for_prediction(request)`.
FastAPI 0.165 solves each declared dependency anew on every request (cache keys, scope and
generator checks): five of them cost /mpg a quarter of its CPU, one alone a tenth
(bench/RESULTS.md, "Per-request cost")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.admission import ImageAdmission
from service.http.json_workers import JsonWorkers
from service.http.security import check_admin, check_prediction_access, is_admin
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


@dataclass(frozen=True)
class Serving:
    """What the prediction routes use; built once with the app (`app.state.serving`)."""

    settings: Settings
    registry: ModelRegistry
    metrics: ServiceMetrics
    admission: ImageAdmission
    json_workers: JsonWorkers


def serving_for_prediction(request: Request) -> Serving:
    """Refuses callers without prediction access (401/403), else hands over `Serving`: the
    first call of every prediction route."""
    serving: Serving = request.app.state.serving
    check_prediction_access(request, serving.settings)
    return serving


async def require_admin(request: Request, settings: SettingsDep) -> None:
    check_admin(request, settings)


async def require_prediction_access(request: Request) -> None:
    check_prediction_access(request, request.app.state.settings)


async def admin_reader(request: Request, settings: SettingsDep) -> bool:
    return is_admin(request, settings)


AdminAccess = Depends(require_admin)
PredictionAccess = Depends(require_prediction_access)
IsAdmin = Annotated[bool, Depends(admin_reader)]
"""Whether a read may show administrators' details (exceptions, paths)."""
