"""POST /digit with the reject option: the served version's thresholds (its metadata's `reject`)
decide "no digit found" (422) and `uncertain` answers; a version without them answers as
before. A tiny real model, its thresholds set here to force each outcome; and one trained with
negatives, judged by the thresholds its training chose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.usecases.reject import MAYBE_A_NUMBER
from tests import drawings
from tests.conftest import TINY_DIGIT

TAUGHT_DIGIT = {**TINY_DIGIT, "negatives": 0.5}
"""The tiny MLP, shown half as many pictures holding no digit as digits."""


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


@pytest.fixture(scope="module")
def taught_models(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path, data_paths) -> Path:  # type: ignore[no-untyped-def]
    """The tiny models, with a digit/1 trained with negatives: training chose its thresholds."""
    from training.hyperparameters import DigitHyperparameters, PromotePolicy
    from training.pipeline import run_training
    from training.progress import SilentProgress

    folder = tmp_path_factory.mktemp("taught") / "models"
    shutil.copytree(tiny_models, folder, ignore=shutil.ignore_patterns("digit"))
    run_training(
        "digit",
        DigitHyperparameters.model_validate(TAUGHT_DIGIT),
        paths=data_paths,
        models_dir=folder,
        observer=SilentProgress(),
        promote=PromotePolicy.always,
        command="tests/service/test_digit_reject.py",
    )
    return folder


@pytest.mark.slow
def test_a_version_trained_with_negatives_is_judged_by_the_thresholds_training_chose(
    client_factory, settings_factory, taught_models, mnist
) -> None:  # type: ignore[no-untyped-def]
    from bench.not_digits import uploads

    client = client_factory(settings_factory(models_dir=taught_models))
    reject = client.get("/models/digit").json()["versions"][0]["reject"]
    refuse, flag = reject["no_digit_below"], reject["uncertain_below"]
    assert 0 < refuse <= flag < 1
    assert reject["validation_digits"]["refused"] <= 0.01
    pictures = [drawings.mnist_png(digit) for digit in mnist.x_test[:30]] + uploads(30, seed=5)
    for picture in pictures:
        response = client.post("/digit", files={"file": ("x.png", picture, "image/png")})
        if response.status_code == 422:
            # A word is several characters side by side: /digit refuses it as several digits.
            assert response.json()["code"] in ("no_digit_found", "several_digits")
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["probability"] >= refuse
        maybe_a_number = MAYBE_A_NUMBER in body.get("reason", "")
        assert body["uncertain"] is (body["probability"] < flag or maybe_a_number)
        assert ("reason" in body) is body["uncertain"]
