"""Bodies of the TensorFlow Serving REST API (`/v1/models/...`), in the JSON shapes TensorFlow
Serving itself writes: its REST API guide (tensorflow_serving/g3doc/api_rest.md) and the proto3
JSON of GetModelStatusResponse and GetModelMetadataResponse (int64 fields as strings)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from training.cars import EXAMPLE_CAR
from training.signatures import SERVING_SIGNATURE_KEY, Signature, TensorSpec

PREDICT_METHOD = "tensorflow/serving/predict"
TF_DTYPES = {"float32": "DT_FLOAT"}

PREDICT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "signature_name": {
            "type": "string",
            "description": f"Optional; only {SERVING_SIGNATURE_KEY!r} (the default) exists",
        },
        "instances": {
            "type": "array",
            "minItems": 1,
            "description": "Row format: one item per row. With one named input (digit) each "
            "item is that input's value (a 28x28 nested list) or an object naming it; with "
            "several (mpg) each item is an object holding every input",
        },
        "inputs": {
            "description": "Columnar format: an object mapping each input name to its whole "
            "tensor (rows first), or with one named input just that tensor",
        },
    },
    "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    "examples": [{"instances": [EXAMPLE_CAR]}],
}


class RowPredictions(BaseModel):
    """The answer to the row format (`instances`)."""

    predictions: list[Any] = Field(
        description="One item per instance, in order. With one named output (as both models "
        "have) the item is that output's value for the row, its name omitted; with several, "
        "an object keyed by output name"
    )


class ColumnarOutputs(BaseModel):
    """The answer to the columnar format (`inputs`)."""

    outputs: Any = Field(
        description="With one named output, its whole tensor (rows first); with several, an "
        "object keyed by output name"
    )


class TfStatus(BaseModel):
    error_code: str = Field("OK", description="A tensorflow.error.Code name: OK when loaded")
    error_message: str = ""


class ModelVersionStatus(BaseModel):
    version: str
    state: Literal["UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END"]
    status: TfStatus


class ModelStatusResponse(BaseModel):
    """GetModelStatusResponse: the versions this server has loaded, is loading or failed to load."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version_status": [
                        {
                            "version": "1",
                            "state": "AVAILABLE",
                            "status": {"error_code": "OK", "error_message": ""},
                        }
                    ]
                }
            ]
        }
    )

    model_version_status: list[ModelVersionStatus]


class TfTensorShapeDim(BaseModel):
    size: str = Field(description="The dimension's size; -1 where any size goes")
    name: str = ""


class TfTensorShape(BaseModel):
    dim: list[TfTensorShapeDim]
    unknown_rank: bool = False


class TfTensorInfo(BaseModel):
    dtype: str = Field(description="A tensorflow DataType name, e.g. DT_FLOAT")
    tensor_shape: TfTensorShape
    name: str = Field(
        "", description="The graph tensor name; internal to the SavedModel and not reported here"
    )


class TfSignatureDef(BaseModel):
    inputs: dict[str, TfTensorInfo]
    outputs: dict[str, TfTensorInfo]
    method_name: str


class TfSignatureDefMap(BaseModel):
    signature_def: dict[str, TfSignatureDef]


class TfModelMetadata(BaseModel):
    signature_def: TfSignatureDefMap


class TfModelSpec(BaseModel):
    name: str
    signature_name: str = ""
    version: str


class ModelMetadataResponse(BaseModel):
    """GetModelMetadataResponse: the served version and its serving signature."""

    model_spec: TfModelSpec
    metadata: TfModelMetadata


def _tensor_info(spec: TensorSpec) -> TfTensorInfo:
    dims = [TfTensorShapeDim(size=str(-1 if d is None else d)) for d in spec.shape]
    return TfTensorInfo(dtype=TF_DTYPES[spec.dtype], tensor_shape=TfTensorShape(dim=dims))


def model_metadata(name: str, version: int, signature: Signature) -> ModelMetadataResponse:
    signature_def = TfSignatureDef(
        inputs={spec.name: _tensor_info(spec) for spec in signature.inputs},
        outputs={spec.name: _tensor_info(spec) for spec in signature.outputs},
        method_name=PREDICT_METHOD,
    )
    return ModelMetadataResponse(
        model_spec=TfModelSpec(name=name, version=str(version)),
        metadata=TfModelMetadata(
            signature_def=TfSignatureDefMap(signature_def={SERVING_SIGNATURE_KEY: signature_def})
        ),
    )
