"""Turns the hyperparameter vocabulary into Keras objects: activations, initialisers,
optimisers and learning-rate schedules."""

from __future__ import annotations

from typing import Any

import keras

from training.hyperparameters import (
    Activation,
    Initializer,
    Optimizer,
    Schedule,
    TrainingHyperparameters,
)


def activation_layer(hp: TrainingHyperparameters) -> keras.layers.Layer:
    """A fresh activation layer (a layer, not a string, so leaky_relu can carry its slope)."""
    if hp.activation is Activation.leaky_relu:
        return keras.layers.LeakyReLU(negative_slope=hp.leaky_relu_slope)
    return keras.layers.Activation(hp.activation.value)


_INITIALIZER_ALIASES = {
    Initializer.xavier_uniform: Initializer.glorot_uniform,
    Initializer.xavier_normal: Initializer.glorot_normal,
    Initializer.kaiming_uniform: Initializer.he_uniform,
    Initializer.kaiming_normal: Initializer.he_normal,
}


def kernel_initializer(hp: TrainingHyperparameters, seed: int) -> keras.initializers.Initializer:
    """The kernel initialiser; `seed` differs per layer so layers do not start identical."""
    name = _INITIALIZER_ALIASES.get(hp.kernel_initializer, hp.kernel_initializer)
    scale = hp.initializer_scale
    factories: dict[Initializer, Any] = {
        Initializer.glorot_uniform: lambda: keras.initializers.GlorotUniform(seed=seed),
        Initializer.glorot_normal: lambda: keras.initializers.GlorotNormal(seed=seed),
        Initializer.he_uniform: lambda: keras.initializers.HeUniform(seed=seed),
        Initializer.he_normal: lambda: keras.initializers.HeNormal(seed=seed),
        Initializer.lecun_normal: lambda: keras.initializers.LecunNormal(seed=seed),
        Initializer.random_uniform: lambda: keras.initializers.RandomUniform(
            -scale, scale, seed=seed
        ),
        Initializer.random_normal: lambda: keras.initializers.RandomNormal(0.0, scale, seed=seed),
        Initializer.zeros: keras.initializers.Zeros,
        Initializer.ones: keras.initializers.Ones,
        Initializer.constant: lambda: keras.initializers.Constant(hp.initializer_value),
    }
    initializer: keras.initializers.Initializer = factories[name]()
    return initializer


ONE_CYCLE_START = 0.1
"""one_cycle starts at this fraction of the peak rate."""


def learning_rate(
    hp: TrainingHyperparameters, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate or schedule; decay is per epoch unless `decay_steps` says otherwise."""
    if hp.lr_schedule is Schedule.exponential:
        return keras.optimizers.schedules.ExponentialDecay(
            hp.learning_rate,
            decay_steps=hp.decay_steps or steps_per_epoch,
            decay_rate=hp.decay_rate,
            staircase=hp.staircase,
        )
    total_steps = max(1, hp.epochs * steps_per_epoch)
    if hp.lr_schedule is Schedule.cosine:
        return keras.optimizers.schedules.CosineDecay(
            hp.learning_rate, decay_steps=hp.decay_steps or total_steps, alpha=hp.cosine_alpha
        )
    if hp.lr_schedule is Schedule.one_cycle:
        warmup = min(total_steps - 1, round(hp.warmup_epochs * steps_per_epoch))
        return keras.optimizers.schedules.CosineDecay(
            hp.learning_rate * ONE_CYCLE_START if warmup else hp.learning_rate,
            decay_steps=total_steps - warmup,
            alpha=hp.cosine_alpha,
            warmup_target=hp.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    return hp.learning_rate


def optimizer(hp: TrainingHyperparameters, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimiser named by `hp.optimizer`, with its learning rate, momentum and decay."""
    lr = learning_rate(hp, steps_per_epoch)
    decay = hp.weight_decay or None
    common: dict[str, Any] = {"learning_rate": lr, "weight_decay": decay}
    match hp.optimizer:
        case Optimizer.sgd | Optimizer.momentum:
            return keras.optimizers.SGD(
                momentum=hp.effective_momentum, nesterov=hp.nesterov, **common
            )
        case Optimizer.adam:
            return keras.optimizers.Adam(**common)
        case Optimizer.adamw:
            return keras.optimizers.AdamW(learning_rate=lr, weight_decay=hp.weight_decay or 0.004)
        case Optimizer.adagrad:
            return keras.optimizers.Adagrad(**common)
        case Optimizer.rmsprop:
            return keras.optimizers.RMSprop(momentum=hp.effective_momentum, **common)
        case Optimizer.adadelta:
            return keras.optimizers.Adadelta(**common)
        case Optimizer.adamax:
            return keras.optimizers.Adamax(**common)
        case Optimizer.nadam:
            return keras.optimizers.Nadam(**common)
    raise ValueError(f"unknown optimizer {hp.optimizer}")
