"""The not-a-digit gate (`training.digit_model`, `training.not_digit_gate`): it spreads the
probabilities where it sees no digit without changing the classifier's answer, it is trained
after the classifier in the same run, and a fine-tune keeps the classifier's weights and trains
a new gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from training import digit_model, versions
from training.data import Mnist
from training.hyperparameters import DigitHyperparameters, PromotePolicy
from training.pipeline import DataPaths, run_training
from training.progress import SilentProgress
from training.served_model import saved_model_probabilities
from training.train import predict

SMALL = {"conv_filters": [4, 8], "hidden_units": [16]}


def _pictures(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 28, 28), dtype=np.float32)


def _set_gate_score(model, logit: float) -> None:  # type: ignore[no-untyped-def]
    """Makes the gate answer sigmoid(`logit`) for every picture."""
    score = model.get_layer("not_digit_gate_score")
    kernel, bias = score.get_weights()
    score.set_weights([np.zeros_like(kernel), np.full_like(bias, logit)])


def test_the_gate_spreads_the_probabilities_but_keeps_the_answer() -> None:
    model = digit_model.build_digit_model(DigitHyperparameters(**SMALL))
    classifier = digit_model.classifier(model)
    x = _pictures(64)
    own = predict(classifier, x)
    _set_gate_score(model, -4.0)  # sure there is no digit
    doubted = predict(model, x)
    np.testing.assert_array_equal(doubted.argmax(axis=1), own.argmax(axis=1))
    np.testing.assert_allclose(doubted.sum(axis=1), 1.0, atol=1e-5)
    assert doubted.max() < 0.12  # near the uniform 0.1
    _set_gate_score(model, 20.0)  # sure there is one
    np.testing.assert_allclose(predict(model, x), own, atol=1e-6)


def test_a_network_without_a_gate_is_its_own_classifier() -> None:
    hp = DigitHyperparameters(**SMALL, not_digit_gate=False)
    model = digit_model.build_digit_model(hp)
    assert digit_model.classifier(model) is model
    assert not digit_model.has_gate(model)
    assert digit_model.has_gate(digit_model.build_digit_model(DigitHyperparameters(**SMALL)))


def test_the_classic_mlp_has_no_gate_unless_asked() -> None:
    assert not DigitHyperparameters(architecture="mlp").not_digit_gate
    assert DigitHyperparameters(architecture="mlp", not_digit_gate=True).not_digit_gate


def test_zero_epochs_need_a_served_network() -> None:
    with pytest.raises(ValidationError, match="start_from served"):
        DigitHyperparameters(epochs=0)
    assert DigitHyperparameters(epochs=0, start_from="served").epochs == 0


@pytest.mark.slow
@pytest.mark.data
def test_a_run_trains_the_gate_and_a_fine_tune_keeps_the_classifier(
    tmp_path: Path, data_paths: DataPaths, mnist: Mnist
) -> None:
    common = {**SMALL, "max_train_samples": 1500, "batch_size": 64}

    def run(**overrides: object):  # type: ignore[no-untyped-def]
        hp = DigitHyperparameters.model_validate({**common, **overrides})
        return run_training(
            "digit",
            hp,
            paths=data_paths,
            models_dir=tmp_path,
            observer=SilentProgress(),
            promote=PromotePolicy.always,
            command="test",
        )

    first = run(epochs=1).metadata
    assert [record["stage"] for record in first["history"]] == ["train", "gate"]
    gate = first["not_digit_gate"]
    assert gate["digits"] == 1350 and gate["negatives"] == 810
    reject = first["reject"]
    assert 0 < reject["no_digit_below"] <= reject["uncertain_below"] < 1
    assert reject["validation_digits"]["answered"] >= 0.99

    x = mnist.x_test[:300].astype(np.float32) / 255.0
    version_1 = versions.version_dir(tmp_path, "digit", 1)
    before = saved_model_probabilities(version_1, x)
    second = run(epochs=0, start_from="served", seed=1).metadata
    assert second["started_from_version"] == 1
    assert second["started_from"]["hyperparameters"] == first["hyperparameters"]
    assert second["started_from"]["command"] == "test"
    assert [record["stage"] for record in second["history"]] == ["gate"]
    after = saved_model_probabilities(versions.version_dir(tmp_path, "digit", 2), x)
    # The classifier's weights are version 1's: its answers stay, only the gate is new.
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert not np.allclose(after, before, atol=1e-4)
    assert second["metrics"]["accuracy"] == first["metrics"]["accuracy"]
