"""training.hyperparameters: the validated vocabulary of training jobs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from training.hyperparameters import (
    HYPERPARAMETERS,
    Activation,
    DigitArchitecture,
    DigitHyperparameters,
    DigitLoss,
    Initializer,
    MpgHyperparameters,
    MpgLoss,
    Optimizer,
    Schedule,
)


def _error_of(schema: type, values: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        schema.model_validate(values)
    return caught.value


def test_digit_defaults_are_valid_and_describe_the_cnn() -> None:
    hp = DigitHyperparameters()
    assert hp.architecture is DigitArchitecture.cnn
    assert hp.loss is DigitLoss.cross_entropy
    assert hp.augment is True
    assert hp.conv_filters == [16, 32]
    assert hp.lr_schedule is Schedule.one_cycle
    # The defaults survive a JSON round trip, as the API and metadata.json carry them.
    assert DigitHyperparameters.model_validate(hp.model_dump(mode="json")) == hp


def test_mpg_defaults_are_valid() -> None:
    hp = MpgHyperparameters()
    assert hp.loss is MpgLoss.mae
    assert hp.hidden_units == [32, 32]
    assert 1 <= hp.ensemble_size <= 10
    assert hp.validation_split == 0.1
    assert MpgHyperparameters.model_validate(hp.model_dump(mode="json")) == hp


def test_mlp_gets_the_classic_keras_defaults() -> None:
    hp = DigitHyperparameters.model_validate({"architecture": "mlp"})
    assert hp.hidden_units == [512]
    assert hp.activation is Activation.relu
    assert hp.dropout == 0.2
    assert hp.optimizer is Optimizer.adam
    assert hp.learning_rate == 1e-3
    assert hp.lr_schedule is Schedule.constant
    assert hp.batch_size == 128
    assert hp.epochs == 2
    assert hp.augment is False
    assert hp.kernel_initializer is Initializer.glorot_uniform


def test_mlp_keeps_what_the_user_gave() -> None:
    hp = DigitHyperparameters.model_validate(
        {
            "architecture": DigitArchitecture.mlp,
            "epochs": 5,
            "dropout": 0.0,
            "hidden_units": [256, 128],
        }
    )
    assert (hp.epochs, hp.dropout, hp.hidden_units) == (5, 0.0, [256, 128])
    assert hp.batch_size == 128  # still classic where not given


def test_cnn_defaults_are_untouched_by_the_mlp_rules() -> None:
    hp = DigitHyperparameters.model_validate({"architecture": "cnn"})
    assert hp == DigitHyperparameters()


@pytest.mark.parametrize("schema", [DigitHyperparameters, MpgHyperparameters])
def test_an_unknown_field_is_an_error_naming_it(schema: type) -> None:
    error = _error_of(schema, {"epochz": 3})
    assert [e["loc"] for e in error.errors()] == [("epochz",)]
    assert error.errors()[0]["type"] == "extra_forbidden"
    assert "epochz" in str(error)


def test_a_field_of_the_other_model_is_unknown() -> None:
    error = _error_of(MpgHyperparameters, {"conv_filters": [8]})
    assert error.errors()[0]["loc"] == ("conv_filters",)


@pytest.mark.parametrize(
    ("schema", "values", "loc"),
    [
        (DigitHyperparameters, {"epochs": -1}, ("epochs",)),
        (MpgHyperparameters, {"epochs": 0}, ("epochs",)),
        (DigitHyperparameters, {"epochs": 101}, ("epochs",)),
        (MpgHyperparameters, {"epochs": 5001}, ("epochs",)),
        (MpgHyperparameters, {"learning_rate": -1}, ("learning_rate",)),
        (DigitHyperparameters, {"learning_rate": 0}, ("learning_rate",)),
        (DigitHyperparameters, {"dropout": 0.95}, ("dropout",)),
        (MpgHyperparameters, {"dropout": -0.1}, ("dropout",)),
        (MpgHyperparameters, {"hidden_units": [100_000]}, ("hidden_units", 0)),
        (DigitHyperparameters, {"hidden_units": [128, 0]}, ("hidden_units", 1)),
        (MpgHyperparameters, {"hidden_units": [8] * 7}, ("hidden_units",)),
        (DigitHyperparameters, {"conv_filters": [32, 64, 128, 256]}, ("conv_filters",)),
        (DigitHyperparameters, {"conv_filters": [1024]}, ("conv_filters", 0)),
        (DigitHyperparameters, {"batch_size": 0}, ("batch_size",)),
        (MpgHyperparameters, {"ensemble_size": 11}, ("ensemble_size",)),
        (MpgHyperparameters, {"validation_split": 0.9}, ("validation_split",)),
        (DigitHyperparameters, {"label_smoothing": 0.5}, ("label_smoothing",)),
        (MpgHyperparameters, {"seed": -1}, ("seed",)),
        (MpgHyperparameters, {"momentum": 1.0, "optimizer": "sgd"}, ("momentum",)),
        (DigitHyperparameters, {"epochs": 2.5}, ("epochs",)),
        (DigitHyperparameters, {"epochs": "ten"}, ("epochs",)),
    ],
)
def test_out_of_range_values_are_errors_naming_the_field(
    schema: type, values: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    error = _error_of(schema, values)
    assert [e["loc"] for e in error.errors()] == [loc]
    assert ".".join(str(part) for part in loc) in str(error)


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("optimizer", "sgdd", "'adam'"),
        ("activation", "relu6", "'leaky_relu'"),
        ("kernel_initializer", "orthogonal", "'he_normal'"),
        ("lr_schedule", "linear", "'cosine'"),
        ("loss", "mae", "'cross_entropy'"),
        ("architecture", "resnet", "'mlp'"),
    ],
)
def test_unknown_names_list_the_valid_ones(field: str, value: str, choices: str) -> None:
    error = _error_of(DigitHyperparameters, {field: value})
    assert error.errors()[0]["loc"] == (field,)
    assert choices in error.errors()[0]["msg"]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adagrad", "adadelta", "adamax", "nadam"])
def test_momentum_is_refused_where_it_means_nothing(optimizer: str) -> None:
    error = _error_of(DigitHyperparameters, {"optimizer": optimizer, "momentum": 0.5})
    assert "momentum applies to sgd, momentum and rmsprop" in str(error)
    assert optimizer in str(error)


@pytest.mark.parametrize(
    ("optimizer", "momentum", "effective"),
    [("sgd", None, 0.0), ("momentum", None, 0.9), ("momentum", 0.5, 0.5), ("rmsprop", 0.3, 0.3)],
)
def test_momentum_where_it_applies(
    optimizer: str, momentum: float | None, effective: float
) -> None:
    hp = MpgHyperparameters(optimizer=optimizer, momentum=momentum)  # type: ignore[arg-type]
    assert hp.effective_momentum == effective


def test_nesterov_needs_an_sgd_optimizer() -> None:
    assert MpgHyperparameters(optimizer="momentum", nesterov=True).nesterov  # type: ignore[arg-type]
    error = _error_of(MpgHyperparameters, {"optimizer": "rmsprop", "nesterov": True})
    assert "nesterov applies to sgd and momentum only" in str(error)


def test_label_smoothing_needs_cross_entropy() -> None:
    assert DigitHyperparameters(label_smoothing=0.1).label_smoothing == 0.1
    error = _error_of(DigitHyperparameters, {"loss": "hinge", "label_smoothing": 0.1})
    assert "label_smoothing applies to the cross_entropy loss only" in str(error)


def test_the_mlp_needs_a_hidden_layer() -> None:
    error = _error_of(DigitHyperparameters, {"architecture": "mlp", "hidden_units": []})
    assert "needs at least one hidden layer" in str(error)
    # The CNN may go straight from its convolutions to the softmax.
    assert DigitHyperparameters(hidden_units=[]).hidden_units == []


def test_the_vocabulary_covers_what_issue_2_promises() -> None:
    assert {"relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "selu"} <= set(Activation)
    assert {
        "glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal",
        "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal",
        "random_uniform", "random_normal", "zeros", "ones", "constant",
    } <= set(Initializer)  # fmt: skip
    assert {
        "sgd", "momentum", "adam", "adamw", "adagrad", "rmsprop", "adadelta", "adamax", "nadam",
    } <= set(Optimizer)  # fmt: skip
    assert set(Schedule) == {"constant", "exponential", "cosine", "one_cycle"}
    assert set(MpgLoss) == {"mse", "mae", "huber"}
    assert "cross_entropy" in set(DigitLoss)
    common = {
        "learning_rate", "decay_rate", "decay_steps", "dropout", "batch_size", "epochs",
        "validation_split", "early_stopping_patience", "seed", "leaky_relu_slope", "hidden_units",
    }  # fmt: skip
    for schema in HYPERPARAMETERS.values():
        assert common <= set(schema.model_fields)


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_every_size_of_a_job_is_bounded(name: str) -> None:
    """Bounds keep a job finite: what multiplies its cost has a maximum in the schema."""
    properties = HYPERPARAMETERS[name].model_json_schema()["properties"]
    for field in ("epochs", "batch_size", "ensemble_size"):
        if field in properties:
            assert "maximum" in properties[field], field
    for field in ("hidden_units", "conv_filters"):
        if field in properties:
            assert "maxItems" in properties[field], field
            assert "maximum" in properties[field]["items"], field


def test_user_samples_and_fine_tuning_are_off_unless_asked() -> None:
    hp = DigitHyperparameters()
    assert hp.user_samples.value == "none" and hp.start_from.value == "scratch"
    assert hp.epochs == 10 and hp.learning_rate == 3e-3


def test_fine_tuning_has_its_own_defaults_which_given_values_override() -> None:
    tuned = DigitHyperparameters.model_validate({"start_from": "served"})
    assert (tuned.epochs, tuned.learning_rate, tuned.lr_schedule) == (1, 3e-4, Schedule.cosine)
    mine = DigitHyperparameters.model_validate({"start_from": "served", "epochs": 3})
    assert mine.epochs == 3 and mine.learning_rate == 3e-4
    schema = DigitHyperparameters.model_json_schema()["properties"]
    assert schema["learning_rate"]["x-fine-tune-default"] == 3e-4


@pytest.mark.parametrize(
    "values",
    [
        {"user_samples": "all"},
        {"start_from": "best"},
        {"user_samples_repeat": 0},
        {"user_samples_holdout": 0.9},
    ],
)
def test_user_sample_fields_are_validated(values: dict[str, Any]) -> None:
    _error_of(DigitHyperparameters, values)
