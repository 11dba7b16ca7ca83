"""The Open Inference Protocol v2, driven by the real clients (tritonclient.http with JSON
tensors, the kserve REST client in v2 mode) and httpx, over real HTTP; predictions checked
against the model's serving signature called directly and against the other endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from tritonclient.utils import InferenceServerException

from tests.interop.conftest import LiveServer, Tensors, car_columns
from training.cars import FEATURE_NAMES
from training.signatures import SIGNATURES

Direct = Callable[[str, Tensors], Tensors]
T = TypeVar("T")


@pytest.fixture
def client(server: LiveServer) -> Iterator[triton.InferenceServerClient]:
    triton_client = triton.InferenceServerClient(url=server.host_port, network_timeout=30.0)
    yield triton_client
    triton_client.close()


def with_kserve(work: Callable[[InferenceRESTClient], Coroutine[Any, Any, T]]) -> T:
    """Runs `work` with a kserve v2 REST client, closing it afterwards."""

    async def run() -> T:
        kserve_client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
        try:
            return await work(kserve_client)
        finally:
            await kserve_client.close()

    return asyncio.run(run())


def json_input(name: str, array: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), "FP32")
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def triton_error(call: Callable[[], Any], status: int) -> str:
    with pytest.raises(InferenceServerException) as caught:
        call()
    assert caught.value.status() == str(status), caught.value
    message = caught.value.message()
    assert isinstance(message, str) and message
    return message


# -- health and metadata ----------------------------------------------------------------------


def test_health_with_both_clients(server: LiveServer, client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digit") and client.is_model_ready("mpg", "1")
    assert not client.is_model_ready("mpg", "2")
    assert not client.is_model_ready("resnet")

    async def probe(kserve_client: InferenceRESTClient) -> tuple[bool, bool, bool, bool]:
        return (
            await kserve_client.is_server_live(server.url),
            await kserve_client.is_server_ready(server.url),
            await kserve_client.is_model_ready(server.url, "digit"),
            await kserve_client.is_model_ready(server.url, "resnet"),
        )

    assert with_kserve(probe) == (True, True, True, False)
    assert httpx.get(f"{server.url}/v2/models/mpg/ready").json() == {"name": "mpg", "ready": True}


def test_a_server_missing_a_model_is_live_but_not_ready(digit_only_server: LiveServer) -> None:
    client = triton.InferenceServerClient(url=digit_only_server.host_port)
    try:
        assert client.is_server_live()
        assert not client.is_server_ready()
        assert client.is_model_ready("digit") and not client.is_model_ready("mpg")
        image = json_input("image", np.zeros((1, 28, 28), np.float32))
        assert client.infer("digit", [image]).as_numpy("probabilities").shape == (1, 10)
        car = [json_input(name, np.ones(1, np.float32)) for name in FEATURE_NAMES]
        assert "mpg is unavailable" in triton_error(lambda: client.infer("mpg", car), 503)
    finally:
        client.close()

    url = digit_only_server.url

    async def probe(kserve_client: InferenceRESTClient) -> tuple[int, bool]:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            await kserve_client.is_server_ready(url)
        return caught.value.response.status_code, await kserve_client.is_model_ready(url, "mpg")

    assert with_kserve(probe) == (503, False)
    server_ready = httpx.get(f"{url}/v2/health/ready")
    assert server_ready.status_code == 503
    assert server_ready.json()["ready"] is False and "mpg" in server_ready.json()["error"]
    model_ready = httpx.get(f"{url}/v2/models/mpg/ready")
    assert model_ready.status_code == 503
    assert model_ready.json()["name"] == "mpg" and model_ready.json()["ready"] is False
    assert httpx.get(f"{url}/v2/models/mpg").status_code == 503


def test_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.get_server_metadata() == {
        "name": "perceptron",
        "version": "0.1.0",
        "extensions": [],
    }


@pytest.mark.parametrize(("name", "version"), [("digit", ""), ("mpg", "1")])
def test_model_metadata_follows_the_signature(
    client: triton.InferenceServerClient, name: str, version: str
) -> None:
    signature = SIGNATURES[name]

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "datatype": "FP32", "shape": [-1 if d is None else d for d in s.shape]}
            for s in specs
        ]

    assert client.get_model_metadata(name, version) == {
        "name": name,
        "versions": ["1"],
        "platform": "tensorflow_savedmodel",
        "inputs": tensors(signature.inputs),
        "outputs": tensors(signature.outputs),
    }


def test_model_metadata_errors(client: triton.InferenceServerClient) -> None:
    assert "unknown model" in triton_error(lambda: client.get_model_metadata("resnet"), 404)
    triton_error(lambda: client.get_model_metadata("digit", "2"), 404)
    triton_error(lambda: client.get_model_metadata("digit", "latest"), 404)


# -- inference --------------------------------------------------------------------------------


def test_tritonclient_digit_inference_matches_the_model_and_v1(
    server: LiveServer,
    client: triton.InferenceServerClient,
    digit_images: np.ndarray,
    direct: Direct,
) -> None:
    expected = direct("digit", {"image": digit_images})["probabilities"]
    result = client.infer(
        "digit",
        [json_input("image", digit_images)],
        model_version="1",
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
        request_id="batch-7",
    )
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (8, 10)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    response = result.get_response()
    assert response["id"] == "batch-7"
    assert (response["model_name"], response["model_version"]) == ("digit", "1")

    v1 = httpx.post(
        f"{server.url}/v1/models/digit:predict", json={"instances": digit_images.tolist()}
    )
    np.testing.assert_allclose(probabilities, v1.json()["predictions"], atol=1e-5)


def test_binary_data_output_is_ignored_and_json_returned(
    client: triton.InferenceServerClient, digit_images: np.ndarray, direct: Direct
) -> None:
    """With no outputs named, tritonclient asks for binary outputs; JSON must come back."""
    result = client.infer("digit", [json_input("image", digit_images[:2])])
    assert "parameters" not in result.get_response()["outputs"][0]
    expected = direct("digit", {"image": digit_images[:2]})["probabilities"]
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)


def test_kserve_mpg_inference_matches_the_model_v1_and_post_mpg(
    server: LiveServer, cars: list[dict[str, Any]], direct: Direct
) -> None:
    columns = car_columns(cars)
    expected = direct("mpg", columns)["mpg"]

    async def infer(kserve_client: InferenceRESTClient) -> Any:
        inputs = []
        for name, values in columns.items():
            tensor = InferInput(name, list(values.shape), "FP32")
            tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        request = InferRequest(model_name="mpg", infer_inputs=inputs, request_id="cars")
        return await kserve_client.infer(server.url, request, model_name="mpg")

    response = with_kserve(infer)
    assert (response.model_name, response.id) == ("mpg", "cars")
    output = response.outputs[0]
    assert (output.name, output.datatype, output.shape) == ("mpg", "FP32", [len(cars)])
    mpg = output.as_numpy()
    np.testing.assert_allclose(mpg, expected, atol=1e-4)

    v1 = httpx.post(f"{server.url}/v1/models/mpg:predict", json={"instances": cars})
    np.testing.assert_allclose(mpg, v1.json()["predictions"], atol=1e-5)
    ours = httpx.post(f"{server.url}/mpg", json=cars).json()["results"]
    np.testing.assert_allclose([r["mpg"] for r in ours], mpg, atol=0.006)  # /mpg rounds


def test_nested_data_parameters_and_requested_outputs(
    server: LiveServer, digit_images: np.ndarray, direct: Direct
) -> None:
    body = {
        "id": "nested",
        "model_name": "digit",
        "parameters": {"binary_data_output": True, "priority": 1, "tag": "x"},
        "inputs": [
            {
                "name": "image",
                "shape": [2, 28, 28],
                "datatype": "FP32",
                "parameters": {"note": "nested"},
                "data": digit_images[:2].tolist(),
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    response = httpx.post(f"{server.url}/v2/models/digit/versions/1/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "nested" and answer["model_version"] == "1"
    [output] = answer["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == (
        "probabilities",
        [2, 10],
        "FP32",
    )
    assert len(output["data"]) == 20  # flat, row-major
    expected = direct("digit", {"image": digit_images[:2]})["probabilities"]
    np.testing.assert_allclose(np.reshape(output["data"], (2, 10)), expected, atol=1e-5)


def test_no_id_means_none_in_the_response(server: LiveServer) -> None:
    body = {
        "inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "FP32", "data": [0] * 784}]
    }
    answer = httpx.post(f"{server.url}/v2/models/digit/infer", json=body).json()
    assert "id" not in answer and answer["outputs"][0]["shape"] == [1, 10]


# -- errors -------------------------------------------------------------------------------------


def test_tensor_errors_reach_tritonclient_as_400(client: triton.InferenceServerClient) -> None:
    image = np.zeros((1, 28, 28), np.float32)

    def infer(model: str, inputs: list[triton.InferInput], **options: Any) -> Callable[[], Any]:
        return lambda: client.infer(model, inputs, **options)

    short = json_input("image", np.zeros((1, 27, 28), np.float32))
    assert "shape [1, 27, 28]" in triton_error(infer("digit", [short]), 400)
    double = triton.InferInput("image", [1, 28, 28], "FP64")
    double.set_data_from_numpy(image.astype(np.float64), binary_data=False)
    assert "datatype FP64" in triton_error(infer("digit", [double]), 400)
    renamed = json_input("pixels", image)
    assert "unknown input 'pixels'" in triton_error(infer("digit", [renamed]), 400)
    binary = triton.InferInput("image", [1, 28, 28], "FP32")
    binary.set_data_from_numpy(image, binary_data=True)
    assert "binary tensor data" in triton_error(infer("digit", [binary]), 400)
    six = [json_input(name, np.ones(1, np.float32)) for name in FEATURE_NAMES if name != "weight"]
    assert "missing input(s) weight" in triton_error(infer("mpg", six), 400)
    wrong_output = [triton.InferRequestedOutput("logits", binary_data=False)]
    message = triton_error(infer("digit", [json_input("image", image)], outputs=wrong_output), 400)
    assert "unknown output(s) logits" in message
    assert "unknown model" in triton_error(infer("resnet", [json_input("image", image)]), 404)
    wrong_version = infer("digit", [json_input("image", image)], model_version="2")
    assert "version 2" in triton_error(wrong_version, 404)


def test_kserve_client_reports_the_error_message(server: LiveServer) -> None:
    async def infer(kserve_client: InferenceRESTClient) -> None:
        tensor = InferInput("image", [1, 28, 27], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 28, 27), np.float32), binary_data=False)
        request = InferRequest(model_name="digit", infer_inputs=[tensor])
        await kserve_client.infer(server.url, request, model_name="digit")

    with pytest.raises(httpx.HTTPStatusError) as caught:
        with_kserve(infer)
    assert caught.value.response.status_code == 400
    assert "shape [1, 28, 27]" in str(caught.value)


def _image_input(**changes: Any) -> dict[str, Any]:
    return {
        "name": "image",
        "shape": [1, 28, 28],
        "datatype": "FP32",
        "data": [0.5] * 784,
        **changes,
    }


def _car_inputs(rows: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"name": n, "shape": [rows.get(n, 1)], "datatype": "FP32", "data": [1.0] * rows.get(n, 1)}
        for n in FEATURE_NAMES
    ]


@pytest.mark.parametrize(
    ("model", "body", "fragment"),
    [
        ("digit", {"inputs": [_image_input(data=[0.5] * 783)]}, "needs 784"),
        ("digit", {"inputs": [_image_input(data=[[[0.5] * 28] * 27])]}, "needs 784"),
        ("digit", {"inputs": [_image_input(data=[1e39] * 784)]}, "float32"),
        ("digit", {"inputs": [_image_input(data=["0.5"] * 784)]}, "not a number"),
        ("digit", {"inputs": [_image_input(data=[None] * 784)]}, "not a number"),
        ("digit", {"inputs": [_image_input(shape=[784])]}, "shape [784]"),
        ("digit", {"inputs": [_image_input(shape=[0, 28, 28], data=[])]}, "no rows"),
        ("digit", {"inputs": [_image_input(), _image_input()]}, "given twice"),
        ("digit", {"inputs": [_image_input(datatype="BYTES")]}, "datatype BYTES"),
        ("digit", {"inputs": [_image_input(shape=[1, -28, 28])]}, "shape.1"),
        ("digit", {"inputs": [_image_input(shape=["1", 28, 28])]}, "shape.0"),
        (
            "digit",
            {"inputs": [{"name": "image", "shape": [1, 28, 28], "data": [0] * 784}]},
            "datatype",
        ),
        ("digit", {"inputs": [_image_input()], "id": 7}, "id"),
        ("digit", {"inputs": [_image_input()], "parameters": {"x": [1]}}, "parameters"),
        ("digit", {"inputs": []}, "inputs"),
        ("digit", {"outputs": [{"name": "probabilities"}]}, "inputs"),
        ("digit", [_image_input()], "invalid request"),
        ("mpg", {"inputs": _car_inputs({"weight": 2})}, "same number of rows"),
    ],
)
def test_bad_inference_requests_are_400(
    server: LiveServer, model: str, body: Any, fragment: str
) -> None:
    response = httpx.post(f"{server.url}/v2/models/{model}/infer", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


@pytest.mark.parametrize("content", [b"", b"{", b'{"inputs": [NaN]}', b"-Infinity"])
def test_unparseable_inference_bodies_are_400(server: LiveServer, content: bytes) -> None:
    response = httpx.post(f"{server.url}/v2/models/digit/infer", content=content)
    assert response.status_code == 400 and response.json()["error"]
