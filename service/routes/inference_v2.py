"""The Open Inference Protocol v2 (KServe, Triton, MLServer) REST API, so tritonclient and the
kserve client work unchanged: health, server and model metadata, model readiness and inference.

Inference feeds tensors straight into the serving signature, as Triton would: digit images as
FP32 [n, 28, 28] in 0..1 (white ink on black, centred as in MNIST), cars as seven FP32 [n]
inputs (origin as its code 1-3, model_year as years since 1900); none of the preprocessing of
/digit and /mpg happens. Only FP32 is accepted (as Triton refuses a datatype other than the
model's); binary tensor data is not supported, and outputs always come back as JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from service.batching import Tensors
from service.errors import BadRequest, ModelUnavailable, NotFound, invalid_input
from service.http.bodies import protocol_json_body
from service.http.deps import RegistryDep, serving_for_prediction
from service.http.error_handlers import error_responses
from service.http.openapi import inline_schema, json_request_body
from service.logs import current_request_id
from service.registry import ModelRegistry
from service.schemas.inference_v2 import (
    DATATYPES,
    PLATFORM,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelNotReady,
    ModelReady,
    ResponseOutput,
    ServerLive,
    ServerMetadata,
    ServerNotReady,
    ServerReady,
    TensorMetadata,
    input_arrays,
    requested_outputs,
)
from service.usecases.tensors import (
    MAX_VERSION_DIGITS,
    ModelName,
    VersionNumber,
    check_inputs,
    json_value_limit,
    row_limit,
    run_model,
)
from training.signatures import Signature

router = APIRouter(tags=["open-inference-protocol"])

_INFER_REQUEST: TypeAdapter[InferenceRequest] = TypeAdapter(InferenceRequest)
INFER_BODY = json_request_body(inline_schema(InferenceRequest), "An inference request")
_INFER_ERRORS = error_responses(400, 401, 403, 404, 413, 503)


@router.get("/v2", summary="Server metadata (Open Inference Protocol)")
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name=request.app.title, version=request.app.version, extensions=[])


@router.get("/v2/health/live", summary="Server liveness (Open Inference Protocol)")
async def server_live() -> ServerLive:
    return ServerLive(live=True)


@router.get(
    "/v2/health/ready",
    summary="Server readiness (Open Inference Protocol)",
    response_model=ServerReady,
    responses={503: {"model": ServerNotReady, "description": "Some model has no version serving"}},
)
async def server_ready(registry: RegistryDep) -> ServerReady | JSONResponse:
    """Ready when every model serves a version; otherwise 503 with `ready: false` and why."""
    if registry.ready():
        return ServerReady(ready=True)
    body = ServerNotReady(
        error="not ready: " + registry.waiting_for(),
        code=ModelUnavailable.code,
        request_id=current_request_id(),
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503)


@router.get(
    "/v2/models/{name}",
    summary="Model metadata (Open Inference Protocol)",
    responses=error_responses(404, 503),
)
async def model_metadata(name: ModelName, registry: RegistryDep) -> ModelMetadata:
    """The served version's inputs and outputs (FP32; -1 is the batch dimension)."""
    return _metadata(registry, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}",
    summary="Model version metadata (Open Inference Protocol)",
    responses=error_responses(404, 503),
)
async def model_version_metadata(
    name: ModelName, version: VersionNumber, registry: RegistryDep
) -> ModelMetadata:
    return _metadata(registry, name, _version_number(name, version))


def _metadata(registry: ModelRegistry, name: str, version: int | None) -> ModelMetadata:
    model = registry.get(name, version)

    def tensors(specs: Any) -> list[TensorMetadata]:
        return [
            TensorMetadata(
                name=s.name,
                datatype=DATATYPES[s.dtype],
                shape=[-1 if d is None else d for d in s.shape],
            )
            for s in specs
        ]

    signature = model.signature
    return ModelMetadata(
        name=name,
        versions=[str(model.version)],
        platform=PLATFORM,
        inputs=tensors(signature.inputs),
        outputs=tensors(signature.outputs),
    )


_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(404),
    503: {"model": ModelNotReady, "description": "The model has no version serving"},
}


@router.get(
    "/v2/models/{name}/ready",
    summary="Model readiness (Open Inference Protocol)",
    response_model=ModelReady,
    responses=_READY_RESPONSES,
)
async def model_ready(name: ModelName, registry: RegistryDep) -> ModelReady | JSONResponse:
    """200 with `ready: true` when a version serves; 503 with `ready: false` otherwise."""
    return _readiness(registry, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    summary="Model version readiness (Open Inference Protocol)",
    response_model=ModelReady,
    responses=_READY_RESPONSES,
)
async def model_version_ready(
    name: ModelName, version: VersionNumber, registry: RegistryDep
) -> ModelReady | JSONResponse:
    """As model readiness; 404 unless `version` is the one served."""
    return _readiness(registry, name, _version_number(name, version))


def _readiness(
    registry: ModelRegistry, name: str, version: int | None
) -> ModelReady | JSONResponse:
    try:
        registry.get(name, version)
    except ModelUnavailable as exc:
        body = ModelNotReady(
            error=exc.message, code=exc.code, request_id=current_request_id(), name=name
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    return ModelReady(name=name, ready=True)


@router.post(
    "/v2/models/{name}/infer",
    summary="Inference (Open Inference Protocol)",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
    responses=_INFER_ERRORS,
    openapi_extra={"requestBody": INFER_BODY},
)
async def infer(
    name: ModelName,
    request: Request,
) -> InferenceResponse:
    """Feeds FP32 tensors straight into the served version's serving signature, as Triton
    does; unlike POST /digit and /mpg, nothing is preprocessed. digit takes `image` [n, 28, 28]
    in 0..1 (white ink on black, centred as in MNIST); mpg takes seven [n] inputs (origin as
    its code 1-3, model_year as years since 1900). `data` may be flat (row-major) or nested;
    outputs come back flat, as JSON, whatever `binary_data` parameters ask."""
    return await _infer(request, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    summary="Inference with a given version (Open Inference Protocol)",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
    responses=_INFER_ERRORS,
    openapi_extra={"requestBody": INFER_BODY},
)
async def infer_version(
    name: ModelName,
    version: VersionNumber,
    request: Request,
) -> InferenceResponse:
    """As inference; 404 unless `version` is the one served."""
    number = _version_number(name, version)
    return await _infer(request, name, number)


async def _infer(
    request: Request,
    name: str,
    version: int | None,
) -> InferenceResponse:
    serving = serving_for_prediction(request)
    model = serving.registry.get(name, version)
    max_rows = row_limit(serving.settings, name)
    max_values, why = json_value_limit(model.signature, max_rows)
    raw = await protocol_json_body(request, max_values=max_values, limit_reason=why)
    body, inputs = await serving.json_workers.parse(raw, parse_infer_request, model.signature)
    check_inputs(model.signature, inputs, max_rows)
    wanted = requested_outputs(body.outputs, model.signature)
    outputs = await run_model(model, inputs, serving.metrics, endpoint="/v2/models/{name}/infer")
    return InferenceResponse(
        model_name=name,
        model_version=str(model.version),
        id=body.id,
        outputs=[
            ResponseOutput(
                name=output,
                shape=list(outputs[output].shape),
                datatype=DATATYPES["float32"],
                data=outputs[output].ravel().tolist(),
            )
            for output in wanted
        ],
    )


def parse_infer_request(document: Any, signature: Signature) -> tuple[InferenceRequest, Tensors]:
    """The request of an inference document, its tensors' data taken out (so that only the
    arrays travel back from a JSON worker), and the input arrays."""
    try:
        body = _INFER_REQUEST.validate_python(document)
    except ValidationError as exc:
        error = invalid_input(exc.errors(include_url=False))
        raise BadRequest(error.message, details=error.details) from None
    inputs = input_arrays(body.inputs, signature)
    return body.model_copy(update={"inputs": []}), inputs


def _version_number(name: str, version: str) -> int:
    """Versions are whole numbers here; any other string names no version of the model."""
    if not (version.isascii() and version.isdigit()) or len(version) > MAX_VERSION_DIGITS:
        shown = version if len(version) <= 24 else f"{version[:20]}... ({len(version)} chars)"
        raise NotFound(
            f"model {name} has no version {shown!r}; versions are whole numbers of at most "
            f"{MAX_VERSION_DIGITS} digits"
        )
    return int(version)
