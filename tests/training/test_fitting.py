"""training.fitting: a fit keeps the weights of its best validation loss, as Keras users expect."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.fitting import RunClock, fit_keeping_best
from training.progress import SilentProgress

pytestmark = pytest.mark.slow

# Validation data that disagrees with the training data: the better the fit, the worse the
# validation loss, so the best weights are those after the first epoch, never the last ones.
_rng = np.random.default_rng(0)
X = _rng.normal(size=(64, 4)).astype(np.float32)
W = np.array([1.0, -1.0, 2.0, 0.5], np.float32)
TRAIN = (X, X @ W)
VALIDATION = (X[:32], -(X[:32] @ W))


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def _fit(model: keras.Model, clock: RunClock, epochs: int, patience: int) -> None:
    fit_keeping_best(
        model,
        *TRAIN,
        validation=VALIDATION,
        epochs=epochs,
        batch_size=16,
        patience=patience,
        observer=SilentProgress(),
        clock=clock,
        stage="only",
        seed=0,
    )


def test_the_best_validation_weights_are_kept() -> None:
    model, clock = _model(), RunClock(6)
    _fit(model, clock, epochs=6, patience=0)
    val_losses = [record["val_loss"] for record in clock.history]
    assert len(val_losses) == 6
    assert val_losses == sorted(val_losses)  # worse every epoch, by construction
    kept = model.evaluate(*VALIDATION, verbose=0)
    assert kept == pytest.approx(val_losses[0], rel=1e-4)
    assert kept < val_losses[-1]


def test_early_stopping_counts_the_skipped_epochs_as_done() -> None:
    model, clock = _model(), RunClock(10)
    _fit(model, clock, epochs=10, patience=2)
    assert [record["epoch"] for record in clock.history] == [1, 2, 3]
    assert clock.done_epochs == 10
    assert model.evaluate(*VALIDATION, verbose=0) == pytest.approx(
        clock.history[0]["val_loss"], rel=1e-4
    )
