"""Feedback becomes reviewed, labelled samples: POST /digit/feedback stores what the model saw
and the original; an admin lists, reviews, exports and deletes them. Nothing is stored unless a
person sends feedback."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import REMOTE_CLIENT


def drawn_seven(size: int = 280) -> bytes:
    """A 7 drawn on a white canvas with a thick black pen, as the web page sends it."""
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    s = size / 28
    pen.line([(7 * s, 6 * s), (21 * s, 6 * s), (12 * s, 23 * s)], fill=0, width=int(2.5 * s))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def send(client, label, image: bytes | None = None, **fields):
    files = {"file": ("seven.png", image or drawn_seven(), "image/png")}
    data = {"label": str(label), **{k: str(v) for k, v in fields.items()}}
    return client.post("/digit/feedback", files=files, data=data)


def test_predict_correct_review_export_delete(client) -> None:
    predicted = client.post("/digit", files={"file": ("7.png", drawn_seven(), "image/png")})
    assert predicted.status_code == 200
    assert client.get("/samples").json()["total"] == 0  # predicting stores nothing

    answer = predicted.json()
    sent = send(client, 7, predicted=answer["digit"], model_version=answer["model_version"])
    assert sent.status_code == 201, sent.text
    sample = sent.json()
    assert sample["status"] == "new" and sample["label"] == 7
    assert sample["predicted"] == answer["digit"] and sample["source"] == "upload"
    assert "original_url" not in sample  # the sender is not told where originals live

    listed = client.get("/samples", params={"status": "new"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == sample["id"]
    thumbnail = client.get(listed["items"][0]["image_url"])
    assert thumbnail.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (28, 28)
    original = client.get(listed["items"][0]["original_url"])
    assert original.content == drawn_seven() and original.headers["content-type"] == "image/png"

    reviewed = client.patch(f"/samples/{sample['id']}", json={"status": "accepted"})
    assert reviewed.status_code == 200 and reviewed.json()["status"] == "accepted"
    assert client.get("/samples/counts").json()["accepted"] == {"7": 1}

    exported = client.get("/samples/export")
    assert exported.status_code == 200
    arrays = np.load(io.BytesIO(exported.content))
    assert arrays["x"].shape == (1, 28, 28) and arrays["x"].dtype == np.uint8
    assert arrays["y"].tolist() == [7] and arrays["y"].dtype == np.uint8
    x = arrays["x"][0]
    # MNIST layout: white ink on black, the digit in the middle 20x20.
    assert x.max() == 255 and x[:3].max() == 0 and x[:, :3].max() == 0

    assert client.delete(f"/samples/{sample['id']}").status_code == 204
    assert client.get(f"/samples/{sample['id']}").status_code == 404
    assert client.delete(f"/samples/{sample['id']}").status_code == 404
    assert client.get("/samples").json()["total"] == 0


def test_json_feedback_with_base64_or_pixels(client) -> None:
    image = base64.b64encode(drawn_seven()).decode()
    sent = client.post(
        "/digit/feedback", json={"image": image, "label": 1, "predicted": 7, "source": "canvas"}
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["source"] == "canvas"
    pixels = np.zeros((28, 28))
    pixels[5:23, 13:16] = 1.0
    as_pixels = client.post("/digit/feedback", json={"pixels": pixels.tolist(), "label": 1})
    assert as_pixels.status_code == 201, as_pixels.text
    original = client.get(f"/samples/{as_pixels.json()['id']}/original")
    kept = np.asarray(Image.open(io.BytesIO(original.content)))
    assert kept.shape == (28, 28) and kept.max() == 255


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"label": "10"}, 422, "label"),
        ({"label": "-1"}, 422, "label"),
        ({}, 422, "label"),
        ({"label": "3", "source": "fax"}, 422, "source"),
        ({"label": "3", "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_fields_get_422(client, fields, status, says) -> None:
    files = {"file": ("seven.png", drawn_seven(), "image/png")}
    answer = client.post("/digit/feedback", files=files, data=fields)
    assert answer.status_code == status and says in answer.text
    assert client.get("/samples").json()["total"] == 0


def test_json_labels_must_be_integers(client) -> None:
    image = base64.b64encode(drawn_seven()).decode()
    for label in ("3", 3.0, True):
        answer = client.post("/digit/feedback", json={"image": image, "label": label})
        assert answer.status_code == 422, label


def test_an_image_with_no_digit_gets_422_and_stores_nothing(client) -> None:
    blank = io.BytesIO()
    Image.new("L", (280, 280), 255).save(blank, format="PNG")
    answer = send(client, 3, image=blank.getvalue())
    assert answer.status_code == 422 and answer.json()["code"] == "no_digit_found"
    assert client.get("/samples").json()["total"] == 0


def test_the_original_is_size_limited(client_factory, settings_factory, models_dir) -> None:
    client = client_factory(settings_factory(models_dir=models_dir, max_feedback_image_bytes=2048))
    noisy = io.BytesIO()
    picture = np.random.default_rng(0).integers(0, 40, (200, 200), dtype=np.uint8)
    picture[40:160, 90:110] = 255
    Image.fromarray(picture).save(noisy, format="PNG")
    answer = send(client, 1, image=noisy.getvalue())
    assert answer.status_code == 413 and "PERCEPTRON_MAX_FEEDBACK_IMAGE_BYTES" in answer.text


def test_feedback_is_rate_limited_per_address(client_factory, settings_factory, models_dir) -> None:
    settings = settings_factory(models_dir=models_dir, feedback_per_minute=2)
    local = client_factory(settings)
    for _ in range(2):
        assert send(local, 7).status_code == 201
    refused = send(local, 7)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "PERCEPTRON_FEEDBACK_PER_MINUTE" in refused.json()["error"]
    # Another address has its own allowance; feedback is open like predictions.
    remote = client_factory(settings, client=REMOTE_CLIENT)
    remote.app.state.feedback_limiter = local.app.state.feedback_limiter
    assert send(remote, 7).status_code == 201


def test_feedback_has_a_daily_cap_per_address(client_factory, settings_factory, models_dir) -> None:
    settings = settings_factory(models_dir=models_dir, feedback_per_minute=100, feedback_per_day=3)
    local = client_factory(settings)
    for _ in range(3):
        assert send(local, 7).status_code == 201
    refused = send(local, 7)
    assert refused.status_code == 429, refused.text
    assert "3 requests a day" in refused.json()["error"]
    assert "PERCEPTRON_FEEDBACK_PER_DAY" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    remote = client_factory(settings, client=REMOTE_CLIENT)
    remote.app.state.feedback_limiter = local.app.state.feedback_limiter
    assert send(remote, 7).status_code == 201


def test_reviewing_is_for_admins(client_factory, settings_factory, models_dir) -> None:
    remote = client_factory(settings_factory(models_dir=models_dir), client=REMOTE_CLIENT)
    sample = send(remote, 7).json()
    for method, path in [
        ("GET", "/samples"),
        ("GET", "/samples/export"),
        ("GET", "/samples/counts"),
        ("GET", f"/samples/{sample['id']}/image.png"),
        ("GET", f"/samples/{sample['id']}/original"),
        ("DELETE", f"/samples/{sample['id']}"),
    ]:
        assert remote.request(method, path).status_code == 403, path
    patched = remote.patch(f"/samples/{sample['id']}", json={"status": "accepted"})
    assert patched.status_code == 403


def test_review_bodies_are_validated(client) -> None:
    sample = send(client, 7).json()
    url = f"/samples/{sample['id']}"
    for body in ({}, {"status": "maybe"}, {"label": 12}, {"label": "3"}, {"colour": "red"}):
        assert client.patch(url, json=body).status_code == 422, body
    relabelled = client.patch(url, json={"label": 1, "status": "rejected"}).json()
    assert relabelled["label"] == 1 and relabelled["status"] == "rejected"
    assert relabelled["reviewed_at"] is not None
    assert client.patch("/samples/" + "0" * 32, json={"label": 1}).status_code == 404
    assert client.get("/samples/not-an-id").status_code == 422


def test_listing_filters_and_pages(client) -> None:
    ids = [send(client, label).json()["id"] for label in (7, 7, 1)]
    client.patch(f"/samples/{ids[0]}", json={"status": "accepted"})
    assert client.get("/samples", params={"label": 7}).json()["total"] == 2
    assert client.get("/samples", params={"status": "accepted"}).json()["total"] == 1
    first = client.get("/samples", params={"limit": 2}).json()
    second = client.get("/samples", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    seen = {item["id"] for item in first["items"] + second["items"]}
    assert seen == set(ids)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_another_sites_page_cannot_send_feedback(client, headers: dict[str, str]) -> None:
    """Any page a person visits could otherwise fill the store through that person's browser
    (a form posts multipart without a CORS preflight)."""
    files = {"file": ("seven.png", drawn_seven(), "image/png")}
    refused = client.post("/digit/feedback", files=files, data={"label": "7"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert "send feedback" in refused.json()["error"]
    assert client.get("/samples").json()["total"] == 0


def test_the_service_own_page_and_listed_sites_may_send_feedback(
    client_factory, settings_factory, models_dir
) -> None:
    client = client_factory(
        settings_factory(models_dir=models_dir, cors_origins="https://digits.example,*")
    )
    files = {"file": ("seven.png", drawn_seven(), "image/png")}
    for headers in (
        {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "https://digits.example", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "none"},
        {},
    ):
        sent = client.post("/digit/feedback", files=files, data={"label": "7"}, headers=headers)
        assert sent.status_code == 201, (headers, sent.text)
    # `*` opens predictions to every site, never writes to the store.
    starred = client.post(
        "/digit/feedback", files=files, data={"label": "7"}, headers={"Origin": "https://x.example"}
    )
    assert starred.status_code == 403


def test_a_full_store_answers_507_until_samples_are_deleted(
    client_factory, settings_factory, models_dir
) -> None:
    client = client_factory(settings_factory(models_dir=models_dir, feedback_max_samples=2))
    first = send(client, 7).json()
    assert send(client, 1).status_code == 201
    full = send(client, 7)
    assert full.status_code == 507 and full.json()["code"] == "storage_full"
    assert "PERCEPTRON_FEEDBACK_MAX_SAMPLES" in full.json()["error"]
    assert client.get("/samples").json()["total"] == 2
    assert client.delete(f"/samples/{first['id']}").status_code == 204
    assert send(client, 7).status_code == 201
