"""POST /digit against the bundled model: real MNIST test digits, as files people upload."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from tests import drawings

pytestmark = pytest.mark.data

SAMPLE = slice(0, 300)


def accuracy(client, uploads: list[bytes], labels: np.ndarray, media: str = "image/png") -> float:
    correct = 0
    for data, label in zip(uploads, labels, strict=True):
        response = client.post("/digit", files={"file": ("digit", data, media)})
        assert response.status_code == 200, response.text
        correct += response.json()["digit"] == int(label)
    return correct / len(labels)


def test_mnist_test_digits_as_png(bundled_client, mnist) -> None:
    digits, labels = mnist.x_test[SAMPLE], mnist.y_test[SAMPLE]
    assert accuracy(bundled_client, [drawings.mnist_png(d) for d in digits], labels) >= 0.99


@pytest.mark.parametrize(
    ("make", "media", "bar"),
    [
        (drawings.black_on_white, "image/png", 0.98),
        (drawings.transparent_canvas, "image/png", 0.98),
        (drawings.off_centre, "image/png", 0.98),
        (drawings.jpeg_photo, "image/jpeg", 0.97),
    ],
    ids=["black-on-white", "transparent-canvas", "off-centre-larger", "jpeg-photo"],
)
def test_mnist_test_digits_redrawn_as_people_upload_them(
    bundled_client, mnist, make, media, bar
) -> None:
    digits, labels = mnist.x_test[:200], mnist.y_test[:200]
    assert accuracy(bundled_client, [make(d) for d in digits], labels, media) >= bar


def test_response_shape(bundled_client, mnist) -> None:
    body = bundled_client.post(
        "/digit", files={"file": ("seven.png", drawings.mnist_png(mnist.x_test[0]), "image/png")}
    ).json()
    assert set(body) == {
        "digit", "probability", "probabilities", "model", "model_version", "uncertain",
    }  # fmt: skip
    assert body["uncertain"] is False
    assert body["digit"] == 7 and body["model"] == "digit" and body["model_version"] >= 1
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert body["probability"] == max(body["probabilities"]) > 0.9


def test_the_three_request_shapes_agree(bundled_client, mnist) -> None:
    digit = mnist.x_test[1]
    png = drawings.mnist_png(digit)
    answers = [
        bundled_client.post("/digit", files={"file": ("d.png", png, "image/png")}),
        bundled_client.post("/digit", content=png, headers={"content-type": "image/png"}),
        bundled_client.post("/digit", json={"image": base64.b64encode(png).decode()}),
        bundled_client.post(
            "/digit", json={"image": "data:image/png;base64," + base64.b64encode(png).decode()}
        ),
        bundled_client.post("/digit", json={"pixels": digit.tolist()}),
    ]
    bodies = [a.json() for a in answers]
    assert all(a.status_code == 200 for a in answers), bodies
    assert {b["digit"] for b in bodies} == {int(mnist.y_test[1])}
    reference = np.array(bodies[0]["probabilities"])
    for body in bodies[1:]:
        np.testing.assert_allclose(body["probabilities"], reference, atol=1e-5)


def test_batches_answer_in_order(bundled_client, mnist) -> None:
    digits, labels = mnist.x_test[10:26], mnist.y_test[10:26]
    files = [
        ("file", (f"{i}.png", drawings.mnist_png(d), "image/png")) for i, d in enumerate(digits)
    ]
    multipart = bundled_client.post("/digit", files=files)
    as_json = bundled_client.post(
        "/digit",
        json=[{"image": base64.b64encode(drawings.mnist_png(d)).decode()} for d in digits],
    )
    for response in (multipart, as_json):
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["digit"] for r in results] == [int(label) for label in labels]


def test_a_json_list_of_one_is_still_a_batch(bundled_client, mnist) -> None:
    response = bundled_client.post("/digit", json=[{"pixels": mnist.x_test[0].tolist()}])
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_the_preprocessed_image_can_be_returned(bundled_client, mnist) -> None:
    png = drawings.transparent_canvas(mnist.x_test[0])
    body = bundled_client.post(
        "/digit?include_preprocessed=true", files={"file": ("c.png", png, "image/png")}
    ).json()
    prefix = "data:image/png;base64,"
    assert body["preprocessed_image"].startswith(prefix)
    from io import BytesIO

    from PIL import Image

    seen = Image.open(BytesIO(base64.b64decode(body["preprocessed_image"][len(prefix) :])))
    assert seen.size == (28, 28) and seen.mode == "L"
