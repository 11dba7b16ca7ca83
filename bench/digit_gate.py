"""The digit gate: a small network apart from the classifier that tells a picture holding a
digit from one holding anything else, on the same 28x28 tensor the classifier reads.

The classifier alone cannot say "no digit": trained on digits only, it is sure of a digit for a
letter "A" as often as not, and teaching it negatives costs its MNIST accuracy. The gate learns
the one question instead, from MNIST's training digits (1) against `training.negatives`'
pictures (0), both through the classifier's augmentation and the upload augmentation, so that a
fat marker's digit or a broken stroke stays a digit. Its score's thresholds are chosen on the
validation digits alone (`training.reject.thresholds`), as the classifier's are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from bench.upload_scoring import DigitModel
from training import negatives
from training.augmentation import RandomAffineStroke
from training.digit_model import PERSPECTIVE, SHEAR
from training.signatures import IMAGE_SIZE
from training.upload_augmentation import UploadArtifacts

FILTERS = (16, 32, 32)
"""Filters of the gate's three 3x3 convolutions, each followed by 2x2 max pooling."""
UNITS = 32
EPOCHS = 4
BATCH_SIZE = 256
LEARNING_RATE = 2e-3
TRAIN_NEGATIVES = 2_000_000
"""The gate's training negatives of seed s come from generator seed TRAIN_NEGATIVES + s: apart
from the classifier's and from the validation negatives'."""


def build_gate(seed: int = 0) -> keras.Model:
    """The gate (uncompiled): image (N, 28, 28) in 0..1 -> digit (N, 1), the probability that
    the picture holds a digit."""
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), name="image", dtype="float32")
    x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1))(images)
    x = RandomAffineStroke(
        seed=seed * 1000 + 1, shear=SHEAR, perspective=PERSPECTIVE, name="augmentation"
    )(x)
    x = UploadArtifacts(seed=seed * 1000 + 2, name="upload_artifacts")(x)
    for filters in FILTERS:
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(UNITS, activation="relu")(x)
    digit = layers.Dense(1, activation="sigmoid", dtype="float32", name="digit")(x)
    return keras.Model(images, digit, name="digit_gate")


@dataclass
class GateRun:
    model: keras.Model
    seconds: float
    history: list[dict[str, float]]


def train_gate(
    digits: np.ndarray,
    validation_digits: np.ndarray,
    validation_negatives: np.ndarray,
    *,
    negative_count: int | None = None,
    seed: int = 0,
    epochs: int = EPOCHS,
) -> GateRun:
    """Trains the gate on `digits` (N, 28, 28, 0..1) against as many generated negatives (or
    `negative_count`), keeping the weights of the lowest validation loss."""
    started = time.monotonic()
    count = len(digits) if negative_count is None else negative_count
    pictures = negatives.negatives(count, TRAIN_NEGATIVES + seed)
    x = np.concatenate([digits, pictures]).astype(np.float32)
    y = np.concatenate([np.ones(len(digits)), np.zeros(count)]).astype(np.float32)
    x_val = np.concatenate([validation_digits, validation_negatives]).astype(np.float32)
    y_val = np.concatenate(
        [np.ones(len(validation_digits)), np.zeros(len(validation_negatives))]
    ).astype(np.float32)
    keras.utils.set_random_seed(seed)
    model = build_gate(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(
                LEARNING_RATE, epochs * -(-len(x) // BATCH_SIZE), alpha=0.05
            )
        ),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    best: list[np.ndarray] | None = None
    best_loss = float("inf")
    history = []
    for epoch in range(epochs):
        fitted = model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=True, verbose=0)
        loss, accuracy = model.evaluate(x_val, y_val, batch_size=1024, verbose=0)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(fitted.history["loss"][0]),
                "val_loss": float(loss),
                "val_accuracy": float(accuracy),
            }
        )
        if loss < best_loss:
            best_loss, best = loss, model.get_weights()
    if best is not None:
        model.set_weights(best)
    return GateRun(model, time.monotonic() - started, history)


def load_gate(path: Path) -> GateRun:
    """A gate saved by `keras.Model.save` (what `python -m bench digit_gate` writes)."""
    return GateRun(keras.saving.load_model(path), 0.0, [])


def gate_scores(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The gate's probability that each image (N, 28, 28) holds a digit."""
    if not len(images):
        return np.zeros(0, np.float32)
    return np.asarray(model.predict(images.astype(np.float32), batch_size=1024, verbose=0))[:, 0]


def gate_thresholds(validation_scores: np.ndarray) -> tuple[float, float]:
    """(no_digit_below, uncertain_below) on the gate's score: the quantiles of the validation
    digits' scores that `training.reject` takes of the classifier's highest probability."""
    from training import reject

    return reject.thresholds(validation_scores[:, None])


class GatedDigitModel(DigitModel):
    """The served classifier, with the gate deciding what the reject option refuses or flags."""

    def __init__(
        self, models_dir: Path, gate: keras.Model, no_digit_below: float, uncertain_below: float
    ) -> None:
        super().__init__(models_dir)
        self.gate = gate
        self.no_digit_below = no_digit_below
        self.uncertain_below = uncertain_below

    def doubts(
        self, tensors: np.ndarray, probabilities: np.ndarray, possible_digits: Sequence[int]
    ) -> list[str]:
        scores = gate_scores(self.gate, tensors)
        return [
            "refused" if score < self.no_digit_below else
            "flagged" if score < self.uncertain_below or possible > 1 else ""
            for score, possible in zip(scores, possible_digits, strict=True)
        ]  # fmt: skip
