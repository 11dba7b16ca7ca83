"""Training runs for the two models: data in, a trained Keras model and its test metrics out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from training import (
    components,
    digit_model,
    mpg_model,
    negatives,
    not_digit_gate,
    presets,
    reject,
    served_model,
)
from training.cars import FEATURE_NAMES, TARGET
from training.data import Mnist, features_of, standard_split
from training.devices import TrainingDevice
from training.fitting import RunClock, fit_keeping_best
from training.hyperparameters import (
    DigitHyperparameters,
    DigitLoss,
    MpgHyperparameters,
    MpgLoss,
    TrainingHyperparameters,
)
from training.metrics import classification_metrics, regression_metrics
from training.progress import ProgressObserver
from training.served_model import (
    fine_tuning_hyperparameters,
    load_saved_weights,
)
from training.signatures import NUM_CLASSES
from training.user_samples import UserSampleSplit, with_repeats

EVALUATION_BATCH = 1024
TRAIN_NEGATIVES = 1_000_000
"""The training negatives of seed s are drawn from generator seed TRAIN_NEGATIVES + s."""
VALIDATION_NEGATIVES = 7
"""The validation negatives' generator seed: never that of a training run's negatives."""
VALIDATION_NEGATIVES_COUNT = 2000


@dataclass
class TrainedModel:
    """A trained model ready for export, with what its metadata records."""

    name: str
    model: keras.Model
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    parameters: int
    training_seconds: float
    device: str
    extra: dict[str, Any] = field(default_factory=dict)
    held_out_user_samples: UserSampleSplit | None = None
    """The user samples of the run, for promotion to test the served version on the same
    held-out slice; not written to the metadata."""


def train_digit(
    hp: DigitHyperparameters,
    mnist: Mnist,
    device: TrainingDevice,
    observer: ProgressObserver,
    *,
    user_samples: UserSampleSplit | None = None,
    start_from: Path | None = None,
) -> TrainedModel:
    """Trains the digit classifier on MNIST's training set (the last `validation_split` of it
    held out for checkpointing) and evaluates it on the 10,000 test images.

    With `user_samples`, their training part joins MNIST's training rows `user_samples_repeat`
    times and their held-out part is a second test set (`user_samples_accuracy` in the
    metrics). With `start_from` (a version folder), the network and weights are that
    version's, fine-tuned instead of trained from new weights."""
    started = time.monotonic()
    if start_from is not None:
        hp = fine_tuning_hyperparameters(hp, start_from)
    hp = presets.for_device(hp, device)
    x_train, y_train, validation, extra = _digit_training_rows(hp, mnist, user_samples)
    x_digits = x_train
    categorical = hp.loss is not DigitLoss.cross_entropy or bool(hp.label_smoothing)
    x_train, y_fit = _with_negatives(hp, x_train, y_train, categorical)
    categorical = categorical or y_fit.ndim == 2
    extra["negatives"] = len(x_train) - len(y_train)
    steps_per_epoch = -(-len(x_train) // hp.batch_size)
    model, classifier = _compiled_digit_model(hp, device, steps_per_epoch, start_from, categorical)
    if start_from is not None:
        extra["started_from_version"] = int(start_from.name)
        extra["started_from"] = served_model.recipe(start_from)
    total_epochs = hp.epochs + hp.not_digit_gate
    observer.started(device=device.description, total_epochs=total_epochs)
    clock = RunClock(total_epochs)
    validation_fit = validation
    if categorical:
        validation_fit = (validation[0], keras.utils.to_categorical(validation[1], NUM_CLASSES))
    if hp.epochs:
        fit_keeping_best(
            classifier,
            x_train,
            y_fit,
            validation=validation_fit,
            epochs=hp.epochs,
            batch_size=hp.batch_size,
            patience=hp.early_stopping_patience,
            observer=observer,
            clock=clock,
            stage="train",
            seed=hp.seed,
        )
    if extra["negatives"] or hp.not_digit_gate:
        # Only a model taught what is not a digit spreads its probability over one.
        validation_negatives = negatives.negatives(VALIDATION_NEGATIVES_COUNT, VALIDATION_NEGATIVES)
        if hp.not_digit_gate:
            extra["not_digit_gate"] = not_digit_gate.train_gate(
                model, x_digits, validation, validation_negatives, hp, observer, clock
            )
        as_uploads = not_digit_gate.upload_augmentation(VALIDATION_NEGATIVES)(validation[0])
        extra["reject"] = reject.reject_metadata(
            predict(model, validation[0]),
            predict(model, validation_negatives),
            extra["negatives"],
            predict(model, as_uploads),
        )
    probabilities = predict(model, mnist.x_test.astype(np.float32) / 255.0)
    metrics = classification_metrics(mnist.y_test, probabilities)
    if user_samples is not None:
        metrics.update(user_sample_metrics(model, user_samples, hp.user_samples_repeat))
    return TrainedModel(
        name="digit",
        model=model,
        hyperparameters=hp.model_dump(mode="json"),
        metrics=metrics,
        history=clock.history,
        parameters=model.count_params(),
        training_seconds=time.monotonic() - started,
        device=device.description,
        extra=extra,
        held_out_user_samples=user_samples,
    )


def validation_rows(rows: int, validation_split: float) -> int:
    """How many of `rows` training rows are held out for validation: the digit model holds out
    the last ones, the MPG model a seeded random choice."""
    return max(1, round(rows * validation_split))


def _digit_training_rows(
    hp: DigitHyperparameters, mnist: Mnist, user_samples: UserSampleSplit | None
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """MNIST's training rows scaled to 0..1 (at most `max_train_samples`), less the last
    `validation_split` of them, which are returned apart for checkpointing; the user samples'
    training part joins them `user_samples_repeat` times. Also the counts the metadata records."""
    x = mnist.x_train.astype(np.float32) / 255.0
    y = mnist.y_train.astype(np.int64)
    if hp.max_train_samples:
        x, y = x[: hp.max_train_samples], y[: hp.max_train_samples]
    n_validation = validation_rows(len(x), hp.validation_split)
    x_train, y_train = x[:-n_validation], y[:-n_validation]
    validation = (x[-n_validation:], y[-n_validation:])
    extra: dict[str, Any] = {"train_samples": len(x_train), "validation_samples": n_validation}
    if user_samples is not None:
        x_train, y_train = with_repeats(
            x_train,
            y_train,
            user_samples.x_train.astype(np.float32) / 255.0,
            user_samples.y_train.astype(np.int64),
            hp.user_samples_repeat,
        )
    return x_train, y_train, validation, extra


def _with_negatives(
    hp: DigitHyperparameters, x_train: np.ndarray, y_train: np.ndarray, categorical: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The training rows with `negatives` (a share of them) pictures holding no digit appended,
    and the targets to fit: one-hot rows, the negatives' the uniform distribution over the ten,
    when there are negatives or the loss is categorical; the labels themselves otherwise."""
    negative_rows = round(hp.negatives * len(x_train))
    if not negative_rows:
        return x_train, keras.utils.to_categorical(y_train, NUM_CLASSES) if categorical else y_train
    pictures = negatives.negatives(negative_rows, TRAIN_NEGATIVES + hp.seed)
    targets = np.concatenate(
        [
            keras.utils.to_categorical(y_train, NUM_CLASSES),
            np.full((negative_rows, NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32),
        ]
    )
    return np.concatenate([x_train, pictures]), targets


def _compiled_digit_model(
    hp: DigitHyperparameters,
    device: TrainingDevice,
    steps_per_epoch: int,
    start_from: Path | None,
    categorical: bool,
) -> tuple[keras.Model, keras.Model]:
    """The digit network, seeded, on `device`, and its classifier (the network itself when it
    has no gate), with `start_from`'s classifier weights when given, compiled with the run's
    optimizer and loss."""
    with device.scope():
        keras.utils.set_random_seed(hp.seed)
        model = digit_model.build_digit_model(hp)
        classifier = digit_model.classifier(model)
        if start_from is not None:
            load_saved_weights(classifier, start_from)
        classifier.compile(
            optimizer=components.optimizer(hp, steps_per_epoch),
            loss=_digit_loss(hp, categorical),
            metrics=["accuracy"],
            jit_compile=_jit_compile(hp),
        )
    return model, classifier


def user_sample_metrics(
    model: keras.Model, samples: UserSampleSplit, repeat: int
) -> dict[str, Any]:
    """Accuracy on the held-out user samples, next to how many were tested and trained on."""
    probabilities = predict(model, samples.x_held_out.astype(np.float32) / 255.0)
    correct = probabilities.argmax(axis=1) == samples.y_held_out
    return {
        "user_samples_accuracy": float(correct.mean()),
        "user_samples_count": len(samples.y_held_out),
        "user_samples_trained": len(samples.y_train),
        "user_samples_repeat": repeat,
    }


def _jit_compile(hp: TrainingHyperparameters) -> bool | str:
    return "auto" if hp.jit_compile is None else hp.jit_compile


def _digit_loss(hp: DigitHyperparameters, categorical: bool) -> keras.losses.Loss:
    match hp.loss:
        case DigitLoss.cross_entropy if categorical:
            return keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing)
        case DigitLoss.cross_entropy:
            return keras.losses.SparseCategoricalCrossentropy()
        case DigitLoss.hinge:
            return keras.losses.CategoricalHinge()
        case DigitLoss.mse:
            return keras.losses.MeanSquaredError()
    raise ValueError(f"unknown loss {hp.loss}")


def predict(model: keras.Model, x: Any) -> np.ndarray:
    if isinstance(x, dict):
        n = len(next(iter(x.values())))
        chunks = [
            model({k: v[i : i + EVALUATION_BATCH] for k, v in x.items()}, training=False)
            for i in range(0, n, EVALUATION_BATCH)
        ]
    else:
        chunks = [
            model(x[i : i + EVALUATION_BATCH], training=False)
            for i in range(0, len(x), EVALUATION_BATCH)
        ]
    return np.concatenate([keras.ops.convert_to_numpy(c) for c in chunks])


def train_mpg(
    hp: MpgHyperparameters, cars: pd.DataFrame, device: TrainingDevice, observer: ProgressObserver
) -> TrainedModel:
    """Trains the ensemble on the standard training rows (each member holding out its own
    random `validation_split` of them for checkpointing and early stopping) and evaluates it
    on the 78 standard test rows."""
    started = time.monotonic()
    train, test = standard_split(cars)
    if hp.max_train_samples:
        train = train.iloc[: hp.max_train_samples]
    model, clock = fit_mpg(hp, train, device, observer)
    predictions = predict(model, features_of(test))
    metrics = regression_metrics(test[TARGET].to_numpy(), predictions)
    return TrainedModel(
        name="mpg",
        model=model,
        hyperparameters=hp.model_dump(mode="json"),
        metrics=metrics,
        history=clock.history,
        parameters=model.count_params(),
        training_seconds=time.monotonic() - started,
        device=device.description,
        extra={
            "feature_ranges": {
                name: [float(train[name].min()), float(train[name].max())] for name in FEATURE_NAMES
            },
            "train_samples": len(train),
            "test_samples": len(test),
        },
    )


def fit_mpg(
    hp: MpgHyperparameters, train: pd.DataFrame, device: TrainingDevice, observer: ProgressObserver
) -> tuple[keras.Model, RunClock]:
    """The ensemble trained on the rows of `train` only (so a cross-validation can pass it folds
    of the standard training rows)."""
    train_features = features_of(train)
    target = mpg_model.transform_target(train[TARGET].to_numpy(np.float64), hp.target_transform)
    mean, std = float(target.mean()), float(target.std() or 1.0)
    standardised = ((target - mean) / std).astype(np.float32)

    with device.scope():
        keras.utils.set_random_seed(hp.seed)
        encoder = mpg_model.build_encoder(hp, train_features)
    vectors = keras.ops.convert_to_numpy(encoder(train_features))
    n_validation = validation_rows(len(vectors), hp.validation_split)
    total_epochs = hp.epochs * hp.ensemble_size
    observer.started(device=device.description, total_epochs=total_epochs, stages=hp.ensemble_size)
    clock = RunClock(total_epochs)
    members = []
    for index in range(hp.ensemble_size):
        order = np.random.default_rng(hp.seed * 1000 + index).permutation(len(vectors))
        fit_rows, check_rows = order[n_validation:], order[:n_validation]
        steps_per_epoch = -(-len(fit_rows) // hp.batch_size)
        with device.scope():
            member = mpg_model.build_member(hp, vectors.shape[1], index)
            member.compile(
                jit_compile=_jit_compile(hp),
                optimizer=components.optimizer(hp, steps_per_epoch),
                loss=_mpg_loss(hp),
                metrics=[
                    "mae",
                    "mse",
                    mpg_model.mpg_mae_metric(mean, std, hp.target_transform),
                ],
            )
        fit_keeping_best(
            member,
            vectors[fit_rows],
            standardised[fit_rows],
            validation=(vectors[check_rows], standardised[check_rows]),
            epochs=hp.epochs,
            batch_size=hp.batch_size,
            patience=hp.early_stopping_patience,
            observer=observer,
            clock=clock,
            stage=f"member {index + 1}/{hp.ensemble_size}",
            seed=hp.seed * 1000 + index,
        )
        members.append(member)
    model = mpg_model.assemble(encoder, members, mean=mean, std=std, transform=hp.target_transform)
    return model, clock


def _mpg_loss(hp: MpgHyperparameters) -> keras.losses.Loss | str:
    match hp.loss:
        case MpgLoss.huber:
            return keras.losses.Huber(delta=hp.huber_delta)
        case MpgLoss.mae:
            return "mae"
        case MpgLoss.mse:
            return "mse"
    raise ValueError(f"unknown loss {hp.loss}")
