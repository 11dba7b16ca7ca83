"""One `fit` with what Keras users expect around it: the best weights by validation loss kept
through a checkpoint, optional early stopping, progress and cancellation."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.progress import KerasProgress, ProgressObserver


class RunClock:
    """Shared by the stages of one run so progress and ETA cover the whole run."""

    def __init__(self, total_epochs: int) -> None:
        self.total_epochs = total_epochs
        self.done_epochs = 0
        self.started_at = time.monotonic()
        self.history: list[dict[str, Any]] = []


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
        progress = KerasProgress(
            observer,
            stage=stage,
            done_epochs=clock.done_epochs,
            total_epochs=clock.total_epochs,
            history=clock.history,
            started_at=clock.started_at,
        )
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
        clock.done_epochs = progress.done_epochs + (epochs - _epochs_run(clock.history, stage))
        if checkpoint.exists():
            model.load_weights(checkpoint)


def _epochs_run(history: list[dict[str, Any]], stage: str) -> int:
    return sum(1 for record in history if record["stage"] == stage)
