"""One `fit` with what Keras users expect around it: the best weights by validation loss kept
through a checkpoint, optional early stopping, progress and cancellation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.progress import KerasProgress, ProgressObserver, RunClock

__all__ = ["RunClock", "fit_keeping_best"]


def fit_keeping_best(
    model: keras.Model,
    x: Any,
    y: np.ndarray,
    *,
    validation: tuple[Any, np.ndarray],
    epochs: int,
    batch_size: int,
    patience: int,
    observer: ProgressObserver,
    clock: RunClock,
    stage: str,
    seed: int,
) -> None:
    """Trains `model` and leaves it holding the weights of its lowest validation loss."""
    with tempfile.TemporaryDirectory(prefix="perceptron-ckpt-") as folder:
        checkpoint = Path(folder) / "best.weights.h5"
        progress = KerasProgress(observer, stage=stage, clock=clock)
        callbacks: list[keras.callbacks.Callback] = [
            keras.callbacks.ModelCheckpoint(
                checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
            progress,
        ]
        if patience:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience))
        keras.utils.set_random_seed(seed)
        model.fit(
            x,
            y,
            validation_data=validation,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        # Epochs skipped by early stopping still count as done for the run's progress.
        clock.done_epochs += epochs - progress.epochs_run
        if checkpoint.exists():
            model.load_weights(checkpoint)
