"""POST /digit with the reject option: the served version's thresholds (its metadata's `reject`)
decide "no digit found" (422) and `uncertain` answers; a version without them answers as
before. A tiny real model, its thresholds set here to force each outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import drawings


def _with_thresholds(models_dir: Path, no_digit_below: float, uncertain_below: float) -> None:
    path = models_dir / "digit" / "1" / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["reject"] = {
        "method": "max_probability",
        "no_digit_below": no_digit_below,
        "uncertain_below": uncertain_below,
    }
    path.write_text(json.dumps(metadata))


@pytest.fixture
def upload(mnist) -> dict[str, tuple[str, bytes, str]]:  # type: ignore[no-untyped-def]
    return {"file": ("seven.png", drawings.mnist_png(mnist.x_test[0]), "image/png")}


def test_without_thresholds_no_answer_is_flagged(client, upload) -> None:  # type: ignore[no-untyped-def]
    body = client.post("/digit", files=upload).json()
    assert body["uncertain"] is False
    assert "reason" not in body


def test_under_the_no_digit_threshold_the_answer_is_422_no_digit_found(
    client_factory, settings_factory, models_dir, upload
) -> None:  # type: ignore[no-untyped-def]
    _with_thresholds(models_dir, no_digit_below=1.0, uncertain_below=1.0)
    client = client_factory(settings_factory(models_dir=models_dir))
    response = client.post("/digit", files=upload)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "no_digit_found"
    assert "does not look like a digit" in body["error"]


def test_under_the_uncertain_threshold_the_answer_is_flagged_with_a_reason(
    client_factory, settings_factory, models_dir, upload
) -> None:  # type: ignore[no-untyped-def]
    _with_thresholds(models_dir, no_digit_below=0.0, uncertain_below=1.0)
    client = client_factory(settings_factory(models_dir=models_dir))
    body = client.post("/digit", files=upload).json()
    assert body["uncertain"] is True
    assert body["reason"]
    assert 0 < body["probability"] == max(body["probabilities"])


def test_in_a_batch_the_refused_image_is_named(
    client_factory, settings_factory, models_dir, upload
) -> None:  # type: ignore[no-untyped-def]
    _with_thresholds(models_dir, no_digit_below=1.0, uncertain_below=1.0)
    client = client_factory(settings_factory(models_dir=models_dir))
    _, data, media = upload["file"]
    files = [("file", ("first.png", data, media)), ("file", ("second.png", data, media))]
    response = client.post("/digit", files=files)
    assert response.status_code == 422
    assert response.json()["error"].startswith("first.png: ")
