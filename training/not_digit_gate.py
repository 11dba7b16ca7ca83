"""Training the digit model's not-a-digit gate (`training.digit_model`) on its classifier's
frozen features.

The classifier is trained first and left as it is. The gate's head then learns, from the
classifier's features, to tell the training digits from pictures that hold no digit
(`training.negatives`), both through the augmentation of uploads (slant, perspective, fat and
thin strokes, gaps, line fragments, blur, grain), so that what the preprocessing leaves of a
photo still counts as a digit. The features are computed once per picture, so the head trains in
seconds; the forward passes cost about one epoch of the classifier.

Training the classifier itself on the negatives (`negatives`, outlier exposure) also teaches it
to spread its probability, but costs MNIST accuracy; the gate does not touch the classifier's
answers (bench/RESULTS.md, "Robust reading").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from training import digit_model, negatives
from training.augmentation import RandomAffineStroke
from training.hyperparameters import DigitHyperparameters
from training.progress import ProgressObserver, RunClock
from training.upload_augmentation import UploadArtifacts

NEGATIVES_SHARE = 0.6
"""Negatives drawn for the gate, as a share of the training digits (0.4 caught fewer of the
validation pictures that hold no digit)."""
NEGATIVES_SEED = 3_000_000
"""Seeds of the gate's negatives (plus the run's seed): apart from the classifier's and the
validation negatives'."""
EPOCHS = 15
BATCH_SIZE = 256
LEARNING_RATE = 1e-3
FEATURE_BATCH = 1024
"""Pictures per forward pass: the augmentation and the features are computed in these chunks,
between which the run's observer may cancel it."""


def train_gate(
    model: keras.Model,
    x_digits: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    validation_negatives: np.ndarray,
    hp: DigitHyperparameters,
    observer: ProgressObserver,
    clock: RunClock,
) -> dict[str, Any]:
    """Trains the gate of `model` (its classifier already trained) on `x_digits` against
    generated negatives; reported to `observer` as the run's last epoch, stage "gate". Returns
    what the version's metadata records of it."""
    started = time.monotonic()
    features, head = digit_model.gate_parts(model)
    count = round(NEGATIVES_SHARE * len(x_digits))
    pictures = np.concatenate([x_digits, negatives.negatives(count, NEGATIVES_SEED + hp.seed)])
    targets = np.concatenate([np.ones(len(x_digits)), np.zeros(count)]).astype(np.float32)
    augment = upload_augmentation(NEGATIVES_SEED + 2 * hp.seed)
    x_validation = np.concatenate([validation[0], validation_negatives])
    y_validation = np.concatenate(
        [np.ones(len(validation[0])), np.zeros(len(validation_negatives))]
    ).astype(np.float32)
    chunks = -(-len(pictures) // FEATURE_BATCH) + -(-len(x_validation) // FEATURE_BATCH)
    done = 0

    def features_of(images: np.ndarray, augmented: bool) -> np.ndarray:
        nonlocal done
        out = []
        for start in range(0, len(images), FEATURE_BATCH):
            chunk = images[start : start + FEATURE_BATCH]
            if augmented:
                chunk = augment(chunk)
            out.append(np.asarray(features.predict_on_batch(chunk)))
            done += 1
            clock.step_ended(done / chunks)
            observer.batch_ended(
                done,
                chunks,
                progress=clock.progress(done / chunks),
                eta_s=clock.eta_s(done / chunks),
            )
        return np.concatenate(out)

    train_features = features_of(pictures, augmented=True)
    validation_features = features_of(x_validation, augmented=False)
    keras.utils.set_random_seed(hp.seed)
    head.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="binary_crossentropy")
    history = head.fit(
        train_features,
        targets,
        validation_data=(validation_features, y_validation),
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        shuffle=True,
        verbose=0,
    ).history
    record = {
        "stage": "gate",
        "epoch": 1,
        "epochs": 1,
        "loss": round(float(history["loss"][-1]), 6),
        "val_loss": round(float(history["val_loss"][-1]), 6),
    }
    clock.history.append(record)
    clock.done_epochs += 1
    clock.trained_epochs += 1
    observer.epoch_ended(record, progress=clock.progress(), eta_s=clock.eta_s())
    return {
        "features": int(train_features.shape[1]),
        "digits": len(x_digits),
        "negatives": count,
        "epochs": EPOCHS,
        "val_loss": record["val_loss"],
        "seconds": round(time.monotonic() - started, 1),
    }


def upload_augmentation(seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """The classifier's augmentation with the uploads' warps, then the upload artifacts: a
    function from a batch of 28x28 pictures to a new random version of it."""
    warp = RandomAffineStroke(
        seed=seed + 1, shear=digit_model.SHEAR, perspective=digit_model.PERSPECTIVE
    )
    artifacts = UploadArtifacts(seed=seed + 2)

    def augment(images: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(images), FEATURE_BATCH):
            batch = images[start : start + FEATURE_BATCH, ..., None]
            out.append(np.asarray(artifacts(warp(batch, training=True), training=True))[..., 0])
        return np.concatenate(out) if out else images

    return augment
