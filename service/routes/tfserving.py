"""The TensorFlow Serving REST API, so its clients work unchanged: predict in the row
(`instances`) and columnar (`inputs`) formats, model status and model metadata.

As in TensorFlow Serving, tensors go straight into the serving signature: digit images as
28x28 floats in 0..1 (white ink on black, centred as in MNIST), cars as the model's raw features
(origin as its code 1-3, model_year as years since 1900). None of the preprocessing of /digit and
/mpg happens here. Deliberate differences: NaN and Infinity are refused in requests and never
written in responses (400 instead), only the `serving_default` signature is offered, and
classify/regress are not implemented.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.convertors import IntegerConvertor, register_url_convertor

from service.batching import Tensors
from service.errors import BadRequest, NotFound
from service.http.bodies import protocol_json_body
from service.http.deps import RegistryDep, serving_for_prediction
from service.http.error_handlers import error_responses
from service.http.openapi import json_request_body
from service.registry import ModelRegistry, ModelSlot, VersionState
from service.schemas.tensors import float32_array
from service.schemas.tfserving import (
    PREDICT_REQUEST_SCHEMA,
    ColumnarOutputs,
    ModelMetadataResponse,
    ModelStatusResponse,
    ModelVersionStatus,
    RowPredictions,
    TfStatus,
    model_metadata,
)
from service.usecases.tensors import (
    MAX_VERSION_DIGITS,
    ModelName,
    check_inputs,
    json_value_limit,
    row_limit,
    run_model,
)
from training.signatures import SERVING_SIGNATURE_KEY, Signature

router = APIRouter(tags=["tensorflow-serving"])

PREDICT_BODY = json_request_body(
    PREDICT_REQUEST_SCHEMA,
    "TensorFlow Serving's predict request: `instances` (rows) or `inputs` (columns), not both",
)
_PREDICT_ERRORS = error_responses(400, 401, 403, 404, 413, 503)
_STATES = {VersionState.serving: "AVAILABLE", VersionState.loading: "LOADING"}


class _VersionConvertor(IntegerConvertor):
    """Whole numbers of at most MAX_VERSION_DIGITS digits: anything else matches no route (404),
    never an int() of thousands of digits (Python refuses those, a 500)."""

    regex = f"[0-9]{{1,{MAX_VERSION_DIGITS}}}"


register_url_convertor("version", _VersionConvertor())

# `{version:version}` makes a non-numeric version match no route (404), and a GET on a predict
# path a 405 rather than a status request for version "1:predict".
VersionPath = Annotated[int, Path(description="A version number; only the served one answers")]


@router.post(
    "/v1/models/{name}:predict",
    summary="Predict (TensorFlow Serving REST)",
    response_model=RowPredictions | ColumnarOutputs,
    responses=_PREDICT_ERRORS,
    openapi_extra={"requestBody": PREDICT_BODY},
)
async def predict(
    name: ModelName,
    request: Request,
) -> RowPredictions | ColumnarOutputs:
    """Feeds the tensors straight into the served version's `serving_default` signature, as
    TensorFlow Serving does; unlike POST /digit and /mpg, nothing is preprocessed. digit takes
    `image`, [28, 28] floats in 0..1 per row (white ink on black, centred as in MNIST); mpg
    takes seven scalar features per row (origin as its code 1-3, model_year as years since
    1900). Answers `predictions` (one plain value per row: the models have one named output)
    for `instances`, `outputs` for `inputs`."""
    return await _predict(request, name, None)


@router.post(
    "/v1/models/{name}/versions/{version:version}:predict",
    summary="Predict with a given version (TensorFlow Serving REST)",
    response_model=RowPredictions | ColumnarOutputs,
    responses=_PREDICT_ERRORS,
    openapi_extra={"requestBody": PREDICT_BODY},
)
async def predict_version(
    name: ModelName,
    version: VersionPath,
    request: Request,
) -> RowPredictions | ColumnarOutputs:
    """As predict; 404 unless `version` is the one served."""
    return await _predict(request, name, version)


async def _predict(
    request: Request,
    name: str,
    version: int | None,
) -> RowPredictions | ColumnarOutputs:
    serving = serving_for_prediction(request)
    model = serving.registry.get(name, version)
    max_rows = row_limit(serving.settings, name)
    max_values, why = json_value_limit(model.signature, max_rows)
    body = await protocol_json_body(request, max_values=max_values, limit_reason=why)
    inputs, row_format = await serving.json_workers.parse(
        body, parse_predict_request, model.signature
    )
    check_inputs(model.signature, inputs, max_rows)
    outputs = await run_model(model, inputs, serving.metrics, endpoint="/v1/models/{name}:predict")
    if row_format:
        return RowPredictions(predictions=_rows(outputs))
    if len(outputs) == 1:
        return ColumnarOutputs(outputs=next(iter(outputs.values())).tolist())
    return ColumnarOutputs(outputs={key: value.tolist() for key, value in outputs.items()})


def parse_predict_request(document: Any, signature: Signature) -> tuple[Tensors, bool]:
    """The input arrays of a predict request, and whether it used the row format."""
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object holding 'instances' or 'inputs'")
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise BadRequest("'signature_name' must be a string")
    if signature_name not in ("", SERVING_SIGNATURE_KEY):
        raise BadRequest(
            f"serving signature {signature_name!r} not found; the only one is "
            f"{SERVING_SIGNATURE_KEY!r}"
        )
    if "instances" in document and "inputs" in document:
        raise BadRequest("send either 'instances' (rows) or 'inputs' (columns), not both")
    if "instances" in document:
        return _from_instances(document["instances"], signature), True
    if "inputs" in document:
        return _from_inputs(document["inputs"], signature), False
    raise BadRequest("missing 'instances' (row format) or 'inputs' (columnar format)")


def _is_named(value: Any) -> bool:
    """An object naming inputs, as opposed to a value ({"b64": ...} is a value)."""
    return isinstance(value, dict) and not (len(value) == 1 and "b64" in value)


def _from_instances(instances: Any, signature: Signature) -> Tensors:
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list, one item per row")
    names = signature.input_names
    named = _is_named(instances[0])
    if not named and len(names) > 1:
        raise BadRequest(f"each instance must be an object holding the inputs {', '.join(names)}")
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if named != _is_named(instance):
            kind = "an object" if named else "a value or list"
            raise BadRequest(f"instance {index} must be {kind}, like the first instance")
        if not named:
            columns[names[0]].append(instance)
            continue
        if set(instance) != set(names):
            raise BadRequest(
                f"instance {index} has keys {', '.join(sorted(instance))}; they must be exactly "
                f"the inputs {', '.join(names)}"
            )
        for name in names:
            columns[name].append(instance[name])
    return {name: float32_array(values, f"input {name}") for name, values in columns.items()}


def _from_inputs(inputs: Any, signature: Signature) -> Tensors:
    names = signature.input_names
    if _is_named(inputs):
        missing = [name for name in names if name not in inputs]
        if missing:
            raise BadRequest(f"'inputs' lacks the input(s) {', '.join(missing)}")
        return {name: float32_array(inputs[name], f"input {name}") for name in names}
    if len(names) > 1:
        raise BadRequest(f"'inputs' must be an object holding the inputs {', '.join(names)}")
    return {names[0]: float32_array(inputs, f"input {names[0]}")}


def _rows(outputs: Tensors) -> list[Any]:
    if len(outputs) == 1:
        values: list[Any] = next(iter(outputs.values())).tolist()
        return values
    lists = {key: value.tolist() for key, value in outputs.items()}
    rows = len(next(iter(lists.values())))
    return [{key: value[row] for key, value in lists.items()} for row in range(rows)]


@router.get(
    "/v1/models/{name}",
    summary="Model status (TensorFlow Serving REST)",
    responses=error_responses(404),
)
async def model_status(name: ModelName, registry: RegistryDep) -> ModelStatusResponse:
    """Every version loaded, loading or that failed to load (state END with its error)."""
    return ModelStatusResponse(model_version_status=_statuses(_slot(registry, name)))


@router.get(
    "/v1/models/{name}/versions/{version:version}",
    summary="Model version status (TensorFlow Serving REST)",
    responses=error_responses(404),
)
async def model_version_status(
    name: ModelName, version: VersionPath, registry: RegistryDep
) -> ModelStatusResponse:
    statuses = [s for s in _statuses(_slot(registry, name)) if s.version == str(version)]
    if not statuses:
        raise NotFound(f"version {version} of model {name} is not loaded, loading or failed")
    return ModelStatusResponse(model_version_status=statuses)


@router.get(
    "/v1/models/{name}/metadata",
    summary="Model metadata (TensorFlow Serving REST)",
    responses=error_responses(404, 503),
)
async def metadata(name: ModelName, registry: RegistryDep) -> ModelMetadataResponse:
    """The served version's `serving_default` signature, in TensorFlow Serving's shape."""
    model = registry.get(name)
    return model_metadata(name, model.version, model.signature)


@router.get(
    "/v1/models/{name}/versions/{version:version}/metadata",
    summary="Model version metadata (TensorFlow Serving REST)",
    responses=error_responses(404, 503),
)
async def version_metadata(
    name: ModelName, version: VersionPath, registry: RegistryDep
) -> ModelMetadataResponse:
    model = registry.get(name, version)
    return model_metadata(name, model.version, model.signature)


def _slot(registry: ModelRegistry, name: str) -> ModelSlot:
    slot = registry.slots.get(name)
    if slot is None:
        raise NotFound(f"unknown model {name!r}: the models are {', '.join(registry.slots)}")
    return slot


def _statuses(slot: ModelSlot) -> list[ModelVersionStatus]:
    """Newest first; 404 when the model has no version loaded, loading or failed."""
    found: dict[int, ModelVersionStatus] = {}
    for record in slot.versions.values():
        if record.state in _STATES:
            found[record.version] = ModelVersionStatus(
                version=str(record.version), state=_STATES[record.state], status=TfStatus()
            )
        elif record.state is VersionState.failed:
            message = record.error.message if record.error else "load failed"
            failure = TfStatus(error_code="UNKNOWN", error_message=message)
            found[record.version] = ModelVersionStatus(
                version=str(record.version), state="END", status=failure
            )
    if slot.serving is not None:  # served even if its folder has since been removed
        version = slot.serving.version
        found[version] = ModelVersionStatus(
            version=str(version), state="AVAILABLE", status=TfStatus()
        )
    if not found:
        reason = f" ({slot.error.message})" if slot.error else ""
        raise NotFound(f"model {slot.name} has no version loaded or loading{reason}")
    return [found[version] for version in sorted(found, reverse=True)]
