"""The TensorFlow Serving REST API, driven over real HTTP with httpx as TF Serving's users do,
checked against the model's serving signature called directly and against POST /mpg."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.interop.conftest import LiveServer, Tensors, car_columns, serve
from training.cars import EXAMPLE_CAR
from training.signatures import SIGNATURES

Direct = Callable[[str, Tensors], Tensors]


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _error(response: httpx.Response, status: int) -> str:
    """The `error` message TF Serving clients read, after checking the status."""
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert isinstance(message, str) and message
    return message


# -- model status and metadata -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/models/digit", "/v1/models/digit/versions/1"])
def test_model_status_has_tf_serving_shape(http: httpx.Client, path: str) -> None:
    assert http.get(path).json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_model_status_errors(http: httpx.Client) -> None:
    assert "unknown model" in _error(http.get("/v1/models/resnet"), 404)
    assert "version 7" in _error(http.get("/v1/models/mpg/versions/7"), 404)
    _error(http.get("/v1/models/mpg/versions/latest"), 404)  # versions are numbers


def test_a_version_that_failed_to_load_is_reported_as_end(
    tiny_models: Path, tmp_path: Path
) -> None:
    """TF Serving reports a failed load as state END with the error; the previous version
    keeps serving."""
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    shutil.copytree(models / "digit" / "1", models / "digit" / "2")
    (models / "digit" / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    with serve(models, tmp_path / "var") as live:
        [failed, available] = httpx.get(f"{live.url}/v1/models/digit").json()[
            "model_version_status"
        ]
        assert (failed["version"], failed["state"]) == ("2", "END")
        assert failed["status"]["error_code"] == "UNKNOWN" and failed["status"]["error_message"]
        assert available == {
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        only = httpx.get(f"{live.url}/v1/models/digit/versions/2").json()["model_version_status"]
        assert only == [failed]
        body = {"instances": [[[0.0] * 28] * 28]}
        assert httpx.post(f"{live.url}/v1/models/digit/versions/1:predict", json=body).is_success
        _error(httpx.post(f"{live.url}/v1/models/digit/versions/2:predict", json=body), 404)


def test_status_of_a_model_with_no_version_is_404(digit_only_server: LiveServer) -> None:
    response = httpx.get(f"{digit_only_server.url}/v1/models/mpg")
    assert "no version" in _error(response, 404)


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_metadata_describes_the_serving_signature(http: httpx.Client, name: str) -> None:
    body = http.get(f"/v1/models/{name}/metadata").json()
    assert body["model_spec"] == {"name": name, "signature_name": "", "version": "1"}
    signature_def = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature_def["method_name"] == "tensorflow/serving/predict"
    signature = SIGNATURES[name]
    for kind, specs in (("inputs", signature.inputs), ("outputs", signature.outputs)):
        assert set(signature_def[kind]) == {spec.name for spec in specs}
        for spec in specs:
            info = signature_def[kind][spec.name]
            assert info["dtype"] == "DT_FLOAT"
            sizes = [int(dim["size"]) for dim in info["tensor_shape"]["dim"]]
            assert sizes == [-1 if d is None else d for d in spec.shape]
    versioned = http.get(f"/v1/models/{name}/versions/1/metadata").json()
    assert versioned == body


def test_metadata_errors(http: httpx.Client, digit_only_server: LiveServer) -> None:
    _error(http.get("/v1/models/resnet/metadata"), 404)
    _error(http.get("/v1/models/digit/versions/2/metadata"), 404)
    _error(http.get(f"{digit_only_server.url}/v1/models/mpg/metadata"), 503)


# -- predict ---------------------------------------------------------------------------------


def test_digit_rows_match_the_model(
    http: httpx.Client, digit_images: np.ndarray, direct: Direct
) -> None:
    expected = direct("digit", {"image": digit_images})["probabilities"]
    plain = http.post("/v1/models/digit:predict", json={"instances": digit_images.tolist()})
    assert plain.status_code == 200, plain.text
    predictions = np.array(plain.json()["predictions"])
    assert predictions.shape == (8, 10)
    np.testing.assert_allclose(predictions, expected, atol=1e-5)
    named = [{"image": image} for image in digit_images.tolist()]
    body = {"instances": named, "signature_name": "serving_default"}
    by_name = http.post("/v1/models/digit/versions/1:predict", json=body)
    np.testing.assert_allclose(by_name.json()["predictions"], expected, atol=1e-5)


def test_digit_columns_match_the_model(
    http: httpx.Client, digit_images: np.ndarray, direct: Direct
) -> None:
    expected = direct("digit", {"image": digit_images[:3]})["probabilities"]
    for inputs in (digit_images[:3].tolist(), {"image": digit_images[:3].tolist()}):
        response = http.post("/v1/models/digit:predict", json={"inputs": inputs})
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"outputs"}
        np.testing.assert_allclose(response.json()["outputs"], expected, atol=1e-5)


def test_mpg_rows_and_columns_match_the_model_and_post_mpg(
    http: httpx.Client, cars: list[dict[str, Any]], direct: Direct
) -> None:
    expected = direct("mpg", car_columns(cars))["mpg"]
    rows = http.post("/v1/models/mpg:predict", json={"instances": cars})
    assert rows.status_code == 200, rows.text
    predictions = np.array(rows.json()["predictions"])
    assert predictions.shape == (len(cars),)  # one plain value per row: a single named output
    np.testing.assert_allclose(predictions, expected, atol=1e-4)
    columns = {name: values.tolist() for name, values in car_columns(cars).items()}
    outputs = http.post("/v1/models/mpg:predict", json={"inputs": columns}).json()["outputs"]
    np.testing.assert_allclose(outputs, expected, atol=1e-4)
    ours = http.post("/mpg", json=cars).json()["results"]
    np.testing.assert_allclose([r["mpg"] for r in ours], predictions, atol=0.006)  # 2 decimals


def test_any_content_type_is_read_as_json(http: httpx.Client, cars: list[dict[str, Any]]) -> None:
    """`curl -d` sends form-urlencoded; `requests.post(data=...)` sends none; TF Serving reads
    both as JSON."""
    body = json.dumps({"instances": cars[:2]}).encode()
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {}):
        response = http.post("/v1/models/mpg:predict", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 2


def test_colon_routes_do_not_collide(http: httpx.Client) -> None:
    assert http.get("/v1/models/digit").status_code == 200
    assert http.post("/v1/models/digit:predict", json={"instances": [[[0.0] * 28] * 28]}).is_success
    assert "unknown model 'digit:predict'" in _error(http.get("/v1/models/digit:predict"), 404)
    assert "unknown model" in _error(http.post("/v1/models/resnet:predict", json={}), 404)
    assert http.get("/v1/models/digit/versions/1:predict").status_code == 405


IMAGE = [[0.5] * 28] * 28
CAR = EXAMPLE_CAR


@pytest.mark.parametrize(
    ("model", "body", "fragment"),
    [
        ("digit", {"instances": [IMAGE], "inputs": [IMAGE]}, "not both"),
        ("digit", {"signature_name": "serving_default"}, "missing 'instances'"),
        ("digit", {"instances": []}, "non-empty list"),
        ("digit", {"instances": IMAGE[0]}, "shape [28]"),
        ("digit", {"instances": [IMAGE[:27]]}, "shape [1, 27, 28]"),
        ("digit", {"instances": [IMAGE, IMAGE[:27]]}, "ragged"),
        ("digit", {"instances": [[["0.5"] * 28] * 28]}, "not a number"),
        ("digit", {"instances": [[[True] * 28] * 28]}, "not a number"),
        ("digit", {"instances": [[[1e39] * 28] * 28]}, "float32"),
        ("digit", {"instances": [{"b64": "AAAA"}]}, "not a number"),
        ("digit", {"instances": [{"image": IMAGE}, IMAGE]}, "instance 1 must be an object"),
        ("digit", {"instances": [{"pixels": IMAGE}]}, "exactly the inputs image"),
        ("digit", {"instances": [IMAGE], "signature_name": "serve"}, "signature 'serve'"),
        ("digit", {"instances": [IMAGE], "signature_name": 7}, "must be a string"),
        ("digit", {"inputs": []}, "shape [0]"),
        ("digit", [IMAGE], "JSON object"),
        ("mpg", {"instances": [1, 2]}, "must be an object"),
        ("mpg", {"instances": [{**CAR, "colour": 1}]}, "exactly the inputs"),
        ("mpg", {"instances": [{**CAR, "origin": "japan"}]}, "not a number"),
        ("mpg", {"inputs": [4]}, "must be an object"),
        ("mpg", {"inputs": {k: [v] for k, v in CAR.items() if k != "weight"}}, "lacks the input"),
        (
            "mpg",
            {"inputs": {**{k: [v] for k, v in CAR.items()}, "weight": [1.0, 2.0]}},
            "same number",
        ),
        ("mpg", {"inputs": {k: [] for k in CAR}}, "no rows"),
        ("mpg", {"inputs": {k: v for k, v in CAR.items()}}, "shape []"),
    ],
)
def test_bad_predict_requests_are_400(
    http: httpx.Client, model: str, body: Any, fragment: str
) -> None:
    assert fragment in _error(http.post(f"/v1/models/{model}:predict", json=body), 400)


@pytest.mark.parametrize(
    "content", [b"", b"{", b'{"instances": [NaN]}', b'{"instances": [Infinity]}', b"\xff"]
)
def test_unparseable_bodies_are_400(http: httpx.Client, content: bytes) -> None:
    _error(http.post("/v1/models/mpg:predict", content=content), 400)


def test_too_many_rows_are_400(http: httpx.Client) -> None:
    body = {"inputs": {k: [v] * 1001 for k, v in CAR.items()}}
    assert "limit is 1000" in _error(http.post("/v1/models/mpg:predict", json=body), 400)


def test_predict_with_a_wrong_version_or_unready_model(
    http: httpx.Client, digit_only_server: LiveServer
) -> None:
    body = {"instances": [CAR]}
    assert "version 2" in _error(http.post("/v1/models/mpg/versions/2:predict", json=body), 404)
    _error(http.post("/v1/models/mpg/versions/two:predict", json=body), 404)
    unready = httpx.post(f"{digit_only_server.url}/v1/models/mpg:predict", json=body)
    assert "mpg is unavailable" in _error(unready, 503)
    ready = httpx.post(f"{digit_only_server.url}/v1/models/digit:predict", json={"inputs": [IMAGE]})
    assert ready.status_code == 200
