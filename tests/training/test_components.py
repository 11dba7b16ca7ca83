"""training.components: every name of the vocabulary builds a Keras object that trains.

Each case builds a tiny network with the model builders and takes a few training steps on a
few rows (eagerly, so no graph is traced per case: milliseconds, not seconds).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest

from training import components, digit_model, mpg_model
from training.hyperparameters import (
    Activation,
    DigitHyperparameters,
    Initializer,
    MpgHyperparameters,
    Optimizer,
    Schedule,
)

ROWS = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
TARGETS = (ROWS @ np.array([1.0, -2.0, 0.5], np.float32) + 3.0)[:, None]


def _tiny_net(**values: Any) -> tuple[keras.Model, MpgHyperparameters]:
    hp = MpgHyperparameters.model_validate({"hidden_units": [8], **values})
    return mpg_model.build_member(hp, width=ROWS.shape[1], index=0), hp


def _mse(model: keras.Model) -> float:
    return float(np.mean((keras.ops.convert_to_numpy(model(ROWS)) - TARGETS) ** 2))


def _train_steps(model: keras.Model, hp: MpgHyperparameters, steps: int = 3) -> tuple[float, float]:
    """Loss before and after `steps` updates with the optimiser `hp` describes."""
    model.compile(
        optimizer=components.optimizer(hp, steps_per_epoch=4), loss="mse", run_eagerly=True
    )
    before = _mse(model)
    for _ in range(steps):
        model.train_on_batch(ROWS, TARGETS)
    after = _mse(model)
    assert math.isfinite(after)
    return before, after


EXPECTED_OPTIMIZER = {
    Optimizer.sgd: keras.optimizers.SGD,
    Optimizer.momentum: keras.optimizers.SGD,
    Optimizer.adam: keras.optimizers.Adam,
    Optimizer.adamw: keras.optimizers.AdamW,
    Optimizer.adagrad: keras.optimizers.Adagrad,
    Optimizer.rmsprop: keras.optimizers.RMSprop,
    Optimizer.adadelta: keras.optimizers.Adadelta,
    Optimizer.adamax: keras.optimizers.Adamax,
    Optimizer.nadam: keras.optimizers.Nadam,
}


@pytest.mark.parametrize("name", list(Optimizer))
def test_every_optimizer_builds_and_lowers_the_loss(name: Optimizer) -> None:
    model, hp = _tiny_net(optimizer=name, learning_rate=0.05)
    optimizer = components.optimizer(hp, steps_per_epoch=4)
    assert type(optimizer) is EXPECTED_OPTIMIZER[name]
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)
    before, after = _train_steps(model, hp)
    assert after < before


def test_sgd_momentum_and_nesterov_reach_keras() -> None:
    plain = components.optimizer(MpgHyperparameters(optimizer="sgd"), 1)  # type: ignore[arg-type]
    heavy = components.optimizer(MpgHyperparameters(optimizer="momentum", nesterov=True), 1)  # type: ignore[arg-type]
    rms = components.optimizer(MpgHyperparameters(optimizer="rmsprop", momentum=0.3), 1)  # type: ignore[arg-type]
    assert (plain.momentum, plain.nesterov) == (0.0, False)
    assert (heavy.momentum, heavy.nesterov) == (0.9, True)
    assert rms.momentum == 0.3


def test_weight_decay_reaches_keras() -> None:
    adam = components.optimizer(MpgHyperparameters(weight_decay=0.01), 1)
    assert adam.weight_decay == pytest.approx(0.01)
    assert components.optimizer(MpgHyperparameters(), 1).weight_decay is None
    adamw = components.optimizer(MpgHyperparameters(optimizer="adamw", weight_decay=0.02), 1)  # type: ignore[arg-type]
    assert adamw.weight_decay == pytest.approx(0.02)


def _rate(schedule: Any, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_constant_schedule_is_the_learning_rate() -> None:
    hp = MpgHyperparameters(learning_rate=0.01, lr_schedule="constant")  # type: ignore[arg-type]
    assert components.learning_rate(hp, steps_per_epoch=10) == 0.01


def test_exponential_decay_decays_per_epoch_by_default() -> None:
    hp = MpgHyperparameters(learning_rate=0.1, lr_schedule="exponential", decay_rate=0.5)  # type: ignore[arg-type]
    schedule = components.learning_rate(hp, steps_per_epoch=10)
    assert _rate(schedule, 0) == pytest.approx(0.1)
    assert _rate(schedule, 5) == pytest.approx(0.1 * 0.5**0.5)
    assert _rate(schedule, 20) == pytest.approx(0.025)


def test_exponential_decay_in_whole_steps_and_explicit_steps() -> None:
    hp = MpgHyperparameters(  # type: ignore[arg-type]
        learning_rate=0.1, lr_schedule="exponential", decay_rate=0.5, decay_steps=4, staircase=True
    )
    schedule = components.learning_rate(hp, steps_per_epoch=10)
    assert _rate(schedule, 3) == pytest.approx(0.1)
    assert _rate(schedule, 4) == pytest.approx(0.05)
    assert _rate(schedule, 9) == pytest.approx(0.025)


def test_cosine_decay_spans_the_whole_run() -> None:
    hp = MpgHyperparameters(learning_rate=0.1, lr_schedule="cosine", cosine_alpha=0.1, epochs=3)  # type: ignore[arg-type]
    schedule = components.learning_rate(hp, steps_per_epoch=10)
    assert _rate(schedule, 0) == pytest.approx(0.1)
    assert _rate(schedule, 15) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert _rate(schedule, 30) == pytest.approx(0.01)


def test_one_cycle_warms_up_for_its_epochs_then_decays_to_alpha() -> None:
    hp = MpgHyperparameters(  # type: ignore[arg-type]
        learning_rate=0.1, lr_schedule="one_cycle", warmup_epochs=1, cosine_alpha=0.1, epochs=3
    )
    schedule = components.learning_rate(hp, steps_per_epoch=10)
    assert _rate(schedule, 0) == pytest.approx(0.1 * components.ONE_CYCLE_START)
    start = components.ONE_CYCLE_START
    assert _rate(schedule, 5) == pytest.approx(0.1 * (start + (1 - start) * 0.5))
    assert _rate(schedule, 10) == pytest.approx(0.1)
    assert _rate(schedule, 20) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert _rate(schedule, 30) == pytest.approx(0.01)


@pytest.mark.parametrize("schedule", list(Schedule))
def test_every_schedule_trains(schedule: Schedule) -> None:
    model, hp = _tiny_net(lr_schedule=schedule, learning_rate=0.05, optimizer="sgd", epochs=2)
    before, after = _train_steps(model, hp)
    assert after < before
    rate = model.optimizer.learning_rate
    if schedule is Schedule.constant:
        assert float(keras.ops.convert_to_numpy(rate)) == pytest.approx(0.05)
    else:
        assert float(keras.ops.convert_to_numpy(rate)) < 0.05  # decayed over the 3 steps


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
REFERENCE_ACTIVATIONS = {
    Activation.relu: lambda x: np.maximum(x, 0),
    Activation.leaky_relu: lambda x: np.where(x > 0, x, 0.2 * x),
    Activation.sigmoid: _sigmoid,
    Activation.tanh: np.tanh,
    Activation.elu: lambda x: np.where(x > 0, x, np.expm1(x)),
    Activation.gelu: lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    Activation.selu: lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)),
    Activation.swish: lambda x: x * _sigmoid(x),
}


@pytest.mark.parametrize("name", list(Activation))
def test_every_activation_computes_its_formula_and_trains(name: Activation) -> None:
    model, hp = _tiny_net(activation=name, leaky_relu_slope=0.2, learning_rate=0.01)
    x = np.array([[-3.0, -1.0, -0.25, 0.0, 0.5, 2.0]], np.float32)
    layer = components.activation_layer(hp)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), REFERENCE_ACTIVATIONS[name](x), rtol=1e-5, atol=1e-6
    )
    before, after = _train_steps(model, hp)
    assert after < before


def _first_kernel(**values: Any) -> np.ndarray:
    """The 64x64 kernel of the second hidden layer of a 64-wide two-layer network."""
    hp = MpgHyperparameters.model_validate({"hidden_units": [64, 64], **values})
    model = mpg_model.build_member(hp, width=64, index=0)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return keras.ops.convert_to_numpy(dense[1].kernel)


FAN = 64  # fan_in = fan_out = 64
VARIANCE_STD = {
    Initializer.glorot_normal: math.sqrt(2 / (FAN + FAN)),
    Initializer.he_normal: math.sqrt(2 / FAN),
    Initializer.lecun_normal: math.sqrt(1 / FAN),
}
UNIFORM_LIMIT = {
    Initializer.glorot_uniform: math.sqrt(6 / (FAN + FAN)),
    Initializer.he_uniform: math.sqrt(6 / FAN),
}


@pytest.mark.parametrize(
    "name", [i for i in Initializer if i not in components._INITIALIZER_ALIASES]
)
def test_every_initializer_draws_from_its_distribution(name: Initializer) -> None:
    kernel = _first_kernel(kernel_initializer=name, initializer_value=0.25, initializer_scale=0.3)
    assert kernel.shape == (64, 64)
    if name in UNIFORM_LIMIT:
        limit = UNIFORM_LIMIT[name]
        assert np.abs(kernel).max() <= limit
        assert np.abs(kernel).max() > 0.95 * limit
    elif name in VARIANCE_STD:
        assert kernel.std() == pytest.approx(VARIANCE_STD[name], rel=0.08)
    elif name is Initializer.random_uniform:
        assert np.abs(kernel).max() <= 0.3
        assert np.abs(kernel).max() > 0.95 * 0.3
    elif name is Initializer.random_normal:
        assert kernel.std() == pytest.approx(0.3, rel=0.08)
    else:
        expected = {Initializer.zeros: 0.0, Initializer.ones: 1.0, Initializer.constant: 0.25}
        assert np.all(kernel == expected[name])
    if name not in (Initializer.zeros, Initializer.ones, Initializer.constant):
        assert abs(kernel.mean()) < 0.1 * kernel.std()


@pytest.mark.parametrize("alias", list(components._INITIALIZER_ALIASES))
def test_xavier_and_kaiming_are_glorot_and_he(alias: Initializer) -> None:
    canonical = components._INITIALIZER_ALIASES[alias]
    np.testing.assert_array_equal(
        _first_kernel(kernel_initializer=alias), _first_kernel(kernel_initializer=canonical)
    )


def test_layers_do_not_start_identical() -> None:
    hp = MpgHyperparameters(hidden_units=[64, 64], kernel_initializer="he_normal")  # type: ignore[arg-type]
    model = mpg_model.build_member(hp, width=64, index=0)
    kernels = [
        keras.ops.convert_to_numpy(layer.kernel)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    assert kernels[0].shape == kernels[1].shape == (64, 64)
    assert not np.array_equal(kernels[0], kernels[1])


@pytest.mark.parametrize("name", list(Initializer))
def test_every_initializer_trains(name: Initializer) -> None:
    model, hp = _tiny_net(kernel_initializer=name, initializer_value=0.1, learning_rate=0.01)
    before, after = _train_steps(model, hp)
    assert after < before


@pytest.mark.parametrize(
    "values",
    [
        {"architecture": "mlp", "hidden_units": [16]},
        {"conv_filters": [4], "hidden_units": [8], "augment": True},
        {"conv_filters": [4, 4, 4], "hidden_units": [], "activation": "leaky_relu"},
    ],
    ids=["mlp", "cnn-augmented", "cnn-three-stages"],
)
def test_digit_builders_give_probabilities_and_train(values: dict[str, Any]) -> None:
    hp = DigitHyperparameters.model_validate(values)
    model = digit_model.build_digit_model(hp)
    images = np.random.default_rng(1).uniform(size=(8, 28, 28)).astype(np.float32)
    labels = np.arange(8) % 10
    probabilities = keras.ops.convert_to_numpy(model(images, training=False))
    assert probabilities.shape == (8, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    model.compile(
        optimizer=components.optimizer(hp, steps_per_epoch=1),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert math.isfinite(logs["loss"])
    # Inference is deterministic: augmentation and dropout act only while training.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(images, training=False)),
        keras.ops.convert_to_numpy(model(images, training=False)),
    )
