"""training.served_model: a served version rebuilt for fine-tuning, and measured through its
serving signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import versions
from training.digit_model import build_digit_model, classifier
from training.hyperparameters import DigitHyperparameters
from training.served_model import (
    ServedModelError,
    fine_tuning_hyperparameters,
    load_saved_weights,
    saved_model_probabilities,
)
from training.train import predict


def test_the_rebuilt_network_answers_what_the_saved_model_does(tiny_models: Path, mnist) -> None:  # type: ignore[no-untyped-def]
    folder = versions.version_dir(tiny_models, "digit", 1)
    # The job asks for a CNN; fine-tuning keeps the served network (the tiny MLP).
    hp = fine_tuning_hyperparameters(
        DigitHyperparameters(start_from="served", conv_filters=[8]), folder
    )
    assert hp.architecture.value == "mlp" and hp.hidden_units == [64]
    assert hp.learning_rate == 3e-4  # the job's own optimisation fields stay
    model = classifier(build_digit_model(hp))
    x = mnist.x_test[:200].astype(np.float32) / 255.0
    untrained = predict(model, x)
    load_saved_weights(model, folder)
    served = saved_model_probabilities(folder, x)
    assert not np.allclose(untrained, served, atol=1e-3)
    np.testing.assert_allclose(predict(model, x), served, atol=1e-5)


def test_weights_of_another_network_are_refused(tiny_models: Path) -> None:
    folder = versions.version_dir(tiny_models, "digit", 1)
    other = build_digit_model(DigitHyperparameters(architecture="mlp", hidden_units=[32]))
    with pytest.raises(ServedModelError, match="do not fit"):
        load_saved_weights(other, folder)


def test_a_version_without_hyperparameters_cannot_be_fine_tuned(tmp_path: Path) -> None:
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / versions.METADATA_FILE).write_text("{}")
    with pytest.raises(ServedModelError, match="start_from=scratch"):
        fine_tuning_hyperparameters(DigitHyperparameters(), tmp_path / "3")
