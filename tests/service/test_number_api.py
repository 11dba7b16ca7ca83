"""POST /number against the bundled model, and /digit's answer to a picture of several digits:
real MNIST test digits written side by side, as people upload them."""

from __future__ import annotations

import base64
import io
import itertools
import math

import numpy as np
import pytest

from tests import drawings
from tests.service.test_segmentation import _single_digit_cases, first_of, picks

pytestmark = pytest.mark.data


def post_number(client, data: bytes, media: str = "image/png"):
    return client.post("/number", files={"file": ("number.png", data, media)})


def test_numbers_on_a_canvas_read_left_to_right(bundled_client, mnist) -> None:
    right = 0
    for seed in range(20):
        indices = picks(mnist, 3, 200 + seed)
        canvas = drawings.number_canvas([mnist.x_test[i] for i in indices])
        response = post_number(bundled_client, canvas)
        assert response.status_code == 200, response.text
        right += response.json()["number"] == "".join(str(mnist.y_test[i]) for i in indices)
    assert right >= 19


def test_response_shape(bundled_client, mnist) -> None:
    digits = [first_of(mnist, label) for label in (3, 6, 1)]
    canvas = drawings.number_canvas(digits)
    body = post_number(bundled_client, canvas).json()
    assert set(body) == {"number", "digits", "probability", "model", "model_version"}
    assert body["number"] == "361" and body["model"] == "digit" and body["model_version"] >= 1
    assert [digit["digit"] for digit in body["digits"]] == [3, 6, 1]
    assert body["probability"] == pytest.approx(
        math.prod(digit["probability"] for digit in body["digits"]), abs=1e-5
    )
    width, height = drawings.Image.open(io.BytesIO(canvas)).size
    lefts = []
    for digit in body["digits"]:
        x, y, w, h = digit["box"]
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and w > 0 and h > 0
        lefts.append(x)
    assert lefts == sorted(lefts)


def test_the_three_request_shapes_agree(bundled_client, mnist) -> None:
    digits = [first_of(mnist, label) for label in (2, 0, 7)]
    canvas = drawings.number_canvas(digits)
    row = drawings.row_of_digits(digits)
    multipart = post_number(bundled_client, canvas).json()
    raw = bundled_client.post("/number", content=canvas, headers={"content-type": "image/png"})
    encoded = {"image": base64.b64encode(canvas).decode()}
    as_json = bundled_client.post("/number", json=encoded).json()
    as_pixels = bundled_client.post("/number", json={"pixels": row.tolist()}).json()
    assert multipart["number"] == raw.json()["number"] == as_json["number"] == "207"
    assert as_pixels["number"] == "207"


def test_a_batch_reads_each_image(bundled_client, mnist) -> None:
    first = drawings.number_canvas([first_of(mnist, label) for label in (4, 2)])
    second = drawings.number_canvas([first_of(mnist, label) for label in (9, 0, 5)])
    response = bundled_client.post(
        "/number",
        files=[("file", ("a.png", first, "image/png")), ("file", ("b.png", second, "image/png"))],
    )
    assert response.status_code == 200, response.text
    assert [result["number"] for result in response.json()["results"]] == ["42", "905"]


@pytest.mark.parametrize(
    "case", ["four in two strokes", "five with a detached bar", "broken zero", "one with a speck"]
)
def test_a_digit_in_several_pieces_reads_as_one_digit(bundled_client, mnist, case) -> None:
    picture = drawings.mnist_png(_single_digit_cases(mnist)[case])
    number = post_number(bundled_client, picture).json()
    label = {"four in two strokes": 4, "five with a detached bar": 5, "broken zero": 0}
    assert number["number"] == str(label.get(case, 1))
    digit = bundled_client.post("/digit", files={"file": ("d.png", picture, "image/png")})
    assert digit.status_code == 200 and digit.json()["digit"] == label.get(case, 1)


def test_two_ones_written_close_read_as_11(bundled_client, mnist) -> None:
    """Joined by shape like the halves of a broken 0 (test_segmentation.py), read apart by the
    model's choice; the broken 0 above still reads as one 0."""
    ones = [first_of(mnist, 1, skip) for skip in range(8)]
    for left, right in itertools.pairwise(ones):
        row = drawings.mnist_png(drawings.row_of_digits([left, right], 3))
        assert post_number(bundled_client, row).json()["number"] == "11"


@pytest.mark.parametrize("share", [0.55, 0.7])
def test_digit_flags_a_picture_that_may_hold_two_digits(bundled_client, mnist, share) -> None:
    """A smaller second digit is not surely a digit (a stroke written apart is as high): /digit
    answers flagged, or refuses as several digits when the model reads no digit in it; either
    way it points to /number."""
    for skip in range(4):
        three, six = first_of(mnist, 3, skip), drawings.smaller(first_of(mnist, 6, skip), share)
        picture = drawings.mnist_png(drawings.row_of_digits([three, six]))
        response = bundled_client.post("/digit", files={"file": ("two.png", picture, "image/png")})
        body = response.json()
        if response.status_code == 422:
            assert body["code"] == "several_digits" and "/number" in body["error"]
        else:
            assert response.status_code == 200, response.text
            assert body["uncertain"] is True and "/number" in body["reason"]


def test_no_digit_is_422(bundled_client) -> None:
    blank = drawings.encode(drawings.Image.new("L", (300, 100), 255))
    response = post_number(bundled_client, blank)
    assert response.status_code == 422
    assert response.json()["code"] == "no_digit_found"


def test_too_many_digits_is_422_naming_the_limit(
    client_factory, settings_factory, bundled_models, mnist
) -> None:
    settings = settings_factory(models_dir=bundled_models, max_number_digits=3)
    client = client_factory(settings)
    four = drawings.number_canvas([mnist.x_test[i] for i in picks(mnist, 4, 9)])
    response = post_number(client, four)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "too_many_digits"
    assert "3 digits" in body["error"] and "PERCEPTRON_MAX_NUMBER_DIGITS" in body["error"]
    three = drawings.number_canvas([mnist.x_test[i] for i in picks(mnist, 3, 9)])
    assert post_number(client, three).status_code == 200


def test_digit_refuses_several_digits_pointing_to_number(bundled_client, mnist) -> None:
    for seed in range(10):
        digits = [mnist.x_test[i] for i in picks(mnist, 2, 300 + seed)]
        row = drawings.mnist_png(drawings.row_of_digits(digits))
        for picture in (drawings.number_canvas(digits), row):
            response = bundled_client.post(
                "/digit", files={"file": ("two.png", picture, "image/png")}
            )
            assert response.status_code == 422, response.text
            body = response.json()
            assert body["code"] == "several_digits" and "/number" in body["error"]


def test_openapi_documents_number(bundled_client) -> None:
    schema = bundled_client.get("/openapi.json").json()
    operation = schema["paths"]["/number"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"200", "413", "415", "422"} <= set(operation["responses"])
    reading = schema["components"]["schemas"]["NumberReading"]
    assert reading["examples"][0]["number"] == "361"
    assert np.isclose(
        reading["examples"][0]["probability"],
        math.prod(d["probability"] for d in reading["examples"][0]["digits"]),
        atol=1e-3,
    )
