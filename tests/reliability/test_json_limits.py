"""JSON bodies: a body holding more values than its endpoint can use is refused before it is
parsed, on every JSON endpoint, with the status that endpoint gives a batch over its row limit;
the largest honest request of each still passes. (A flat array of 9.8 MB held the event loop for
a second per request while it was parsed and checked.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.http.json_workers import JsonWorkers
from tests.service.test_bad_input import assert_error

CAR = {
    "cylinders": 4,
    "displacement": 140.0,
    "horsepower": 90.0,
    "weight": 2264.0,
    "acceleration": 15.5,
    "model_year": 71,
    "origin": 1,
}
DIGIT_VALUES = 256 * 784
"""The numbers of the largest digit batch (PERCEPTRON_MAX_BATCH_IMAGES images of 28x28)."""


def zeros(count: int) -> str:
    return "[" + ",".join(["0"] * count) + "]"


ENDPOINTS: dict[str, tuple[str, Any, int, str]] = {
    "TF Serving": (
        "/v1/models/digit:predict",
        lambda n: '{"instances": ' + zeros(n) + "}",
        400,
        "bad_request",
    ),
    "Open Inference v2": (
        "/v2/models/digit/infer",
        lambda n: (
            f'{{"inputs": [{{"name": "image", "shape": [{n}], "datatype": "FP32", '
            f'"data": {zeros(n)}}}]}}'
        ),
        400,
        "bad_request",
    ),
    "/mpg": ("/mpg", zeros, 422, "invalid_input"),
    "/digit": ("/digit", lambda n: '{"pixels": [' + zeros(n) + "]}", 422, "invalid_input"),
    "/digit/feedback": (
        "/digit/feedback",
        lambda n: '{"label": 1, "pixels": [' + zeros(n) + "]}",
        422,
        "invalid_input",
    ),
}
"""Each JSON endpoint: its path, a body of n zeros, and the status and code it gives a batch
over its row limit."""


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_of_more_values_than_the_endpoint_uses_is_refused_unparsed(
    client, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    path, body, status, code = ENDPOINTS[endpoint]
    parsed: list[int] = []
    real_parse = JsonWorkers.parse

    async def spy(self: JsonWorkers, body: bytes, *args: Any) -> Any:
        parsed.append(len(body))
        return await real_parse(self, body, *args)

    monkeypatch.setattr(JsonWorkers, "parse", spy)
    response = client.post(
        path, content=body(DIGIT_VALUES + 1000), headers={"content-type": "application/json"}
    )
    assert_error(response, status, code, "values")
    assert "send fewer rows" in response.json()["error"]
    assert parsed == [], "the body was parsed before it was refused"


def test_the_limits_follow_the_endpoints_own_row_limits(client) -> None:
    cars = client.post(
        "/mpg", content=zeros(1000 * 7 + 300), headers={"content-type": "application/json"}
    )
    assert_error(cars, 422, "invalid_input", "at most 7,256 (1,000 cars of 7 features")
    rows = client.post(
        "/v1/models/mpg:predict",
        json={"instances": [CAR] * 1100},
    )
    assert_error(rows, 400, "bad_request", "1,000 rows of 7 values")


def test_the_largest_honest_requests_pass(client) -> None:
    images = np.random.default_rng(0).random((256, 28, 28)).round(4).tolist()
    tf_serving = client.post("/v1/models/digit:predict", json={"instances": images})
    assert tf_serving.status_code == 200, tf_serving.text
    assert len(tf_serving.json()["predictions"]) == 256
    flat = np.asarray(images).ravel().tolist()
    tensor = {"name": "image", "shape": [256, 28, 28], "datatype": "FP32", "data": flat}
    v2 = client.post("/v2/models/digit/infer", json={"inputs": [tensor]})
    assert v2.status_code == 200, v2.text
    mpg = client.post("/mpg", json=[CAR] * 1000)
    assert mpg.status_code == 200, mpg.text
    assert len(mpg.json()["results"]) == 1000
