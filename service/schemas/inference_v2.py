"""Bodies of the Open Inference Protocol v2 (KServe, Triton, MLServer) REST API, as its
specification (kserve/open-inference-protocol, specification/protocol/inference_rest.md)
defines them, and reading a request's tensors. Requests are validated strictly (a string is
not a number) but tolerate what real clients add: `parameters` anywhere, and `model_name` at
the top (the kserve client)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from service.batching import Tensors
from service.errors import BadRequest
from service.schemas.errors import ErrorBody
from service.schemas.tensors import float32_array
from training.cars import EXAMPLE_CAR
from training.signatures import Signature

PLATFORM = "tensorflow_savedmodel"
"""Triton's name for a TensorFlow SavedModel backend."""
DATATYPES = {"float32": "FP32"}

Parameters = dict[str, StrictBool | StrictInt | StrictFloat | StrictStr]
_REQUEST = ConfigDict(strict=True, extra="ignore")


MAX_TENSOR_DIMS = 32
"""More dimensions than any model here takes (NumPy itself stops at 64)."""


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(description="Protocol extensions supported: none")


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ServerNotReady(ErrorBody):
    """503: some model has no version serving."""

    ready: bool = False


class ModelReady(BaseModel):
    name: str
    ready: bool


class ModelNotReady(ErrorBody):
    """503: the model has no version serving."""

    name: str
    ready: bool = False


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 where any size goes (the batch dimension)")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="The versions that may be requested: the served one")
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    model_config = _REQUEST

    name: str
    shape: list[Annotated[int, Field(ge=0)]] = Field(max_length=MAX_TENSOR_DIMS)
    datatype: str = Field(description="FP32: the only datatype the models take")
    parameters: Parameters | None = None
    data: list[Any] = Field(
        description="The tensor's numbers, flat in row-major order or nested as the shape says"
    )


class RequestOutput(BaseModel):
    model_config = _REQUEST

    name: str
    parameters: Parameters | None = Field(
        None, description="Tolerated; `binary_data` is ignored (outputs always come as JSON)"
    )


class InferenceRequest(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {"name": name, "shape": [1], "datatype": "FP32", "data": [value]}
                        for name, value in EXAMPLE_CAR.items()
                    ],
                }
            ]
        },
    )

    id: str | None = Field(None, description="Echoed in the response")
    model_name: str | None = Field(None, description="Ignored: the path names the model")
    parameters: Parameters | None = Field(
        None, description="Tolerated; `binary_data_output` is ignored (outputs come as JSON)"
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(
        None, description="The outputs to return, in this order; all of them when omitted"
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float] = Field(description="Flat, in row-major order")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = Field(None, description="The request's id, when it had one")
    outputs: list[ResponseOutput]


def input_arrays(inputs: list[RequestInput], signature: Signature) -> Tensors:
    """The request's tensors by name, each reshaped to its declared shape. 400 for an unknown,
    repeated or missing input, a datatype other than FP32, or data that does not fill the
    declared shape."""
    specs = {spec.name: spec for spec in signature.inputs}
    arrays: Tensors = {}
    for tensor in inputs:
        spec = specs.get(tensor.name)
        if spec is None:
            raise BadRequest(f"unknown input {tensor.name!r}: the inputs are {', '.join(specs)}")
        if tensor.name in arrays:
            raise BadRequest(f"input {tensor.name} is given twice")
        expected = DATATYPES[spec.dtype]
        if tensor.datatype != expected:
            raise BadRequest(
                f"input {tensor.name} has datatype {tensor.datatype}; the model takes {expected}"
            )
        data = float32_array(tensor.data, f"input {tensor.name}")
        size = math.prod(tensor.shape)
        if list(data.shape) != tensor.shape:
            if data.ndim != 1 or data.size != size:
                raise BadRequest(
                    f"input {tensor.name}: 'data' holds {data.size} values shaped "
                    f"{list(data.shape)}, but 'shape' {tensor.shape} needs {size}"
                )
            data = data.reshape(tensor.shape)
        arrays[tensor.name] = data
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise BadRequest(f"missing input(s) {', '.join(missing)}")
    return arrays


def requested_outputs(requested: list[RequestOutput] | None, signature: Signature) -> list[str]:
    names = signature.output_names
    if requested is None:
        return list(names)
    unknown = [output.name for output in requested if output.name not in names]
    if unknown:
        raise BadRequest(
            f"unknown output(s) {', '.join(unknown)}: the outputs are {', '.join(names)}"
        )
    return [output.name for output in requested]
