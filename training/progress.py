"""How a training run reports progress and how it is stopped from outside.

The command line prints progress; the job worker stores it and checks for cancellation. Both
implement `ProgressObserver`; `KerasProgress` adapts one to a Keras callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import keras


class TrainingCancelled(Exception):
    """Raised from inside a training loop when its observer asks it to stop."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: the run cannot produce a usable model."""


class ProgressObserver(Protocol):
    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        """Called once before the first epoch; `total_epochs` counts every stage (an mpg
        ensemble trains `stages` networks of `total_epochs // stages` epochs each, at most)."""

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        """`record` holds stage, epoch, epochs and the epoch's logs; `progress` is 0..1."""

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        """Called after each batch (`step` of `steps` in the epoch) with the run's progress
        (0..1) and ETA; raises TrainingCancelled to stop the run (so may `epoch_ended`)."""

    def finished(self) -> None:
        """Called once training is over, before anything is exported: the last chance to raise
        TrainingCancelled."""


class SilentProgress:
    """An observer that reports nothing and never cancels."""

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        pass

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        pass

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        pass

    def finished(self) -> None:
        pass


class RunClock:
    """Shared by the stages of one run so progress and ETA cover the whole run.

    The ETA is the run's own pace since the end of its first step times the epochs left: the
    first step (graph tracing, XLA compilation) is a one-off that would otherwise make every
    estimate of a short run too long, and epochs skipped by early stopping took no time.
    """

    def __init__(self, total_epochs: int, now: Callable[[], float] = time.monotonic) -> None:
        self.total_epochs = total_epochs
        self.done_epochs = 0
        """Epochs done, counting those skipped by early stopping."""
        self.trained_epochs = 0
        """Epochs actually trained."""
        self.now = now
        self.started_at = now()
        self.history: list[dict[str, Any]] = []
        self._pace_origin: tuple[float, float] | None = None

    def progress(self, epoch_fraction: float = 0.0) -> float:
        """The share of the run done, `epoch_fraction` of the current epoch included."""
        return min(1.0, (self.done_epochs + epoch_fraction) / max(1, self.total_epochs))

    def step_ended(self, epoch_fraction: float) -> None:
        if self._pace_origin is None:
            self._pace_origin = (self.now(), self.trained_epochs + epoch_fraction)

    def eta_s(self, epoch_fraction: float = 0.0) -> float | None:
        """Seconds left at the run's pace, or None before there is a pace to go by."""
        if self._pace_origin is None:
            return None
        origin_time, origin_epochs = self._pace_origin
        trained = self.trained_epochs + epoch_fraction - origin_epochs
        if trained <= 0:
            return None
        left = max(0.0, self.total_epochs - self.done_epochs - epoch_fraction)
        return (self.now() - origin_time) / trained * left


class KerasProgress(keras.callbacks.Callback):
    """Forwards a stage of `fit` to an observer, with the run's progress and ETA after every
    batch and epoch, checks for cancellation between batches and fails fast on a diverging
    loss."""

    def __init__(self, observer: ProgressObserver, *, stage: str, clock: RunClock) -> None:
        super().__init__()
        self.observer = observer
        self.stage = stage
        self.clock = clock
        self.epochs_run = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"loss became {float(loss)} in {self.stage} at batch {batch + 1}; "
                "lower the learning rate or change the initializer"
            )
        steps = self.params.get("steps")
        fraction = min(1.0, (batch + 1) / steps) if steps else 0.0
        self.clock.step_ended(fraction)
        self.observer.batch_ended(
            batch + 1,
            steps,
            progress=self.clock.progress(fraction),
            eta_s=self.clock.eta_s(fraction),
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        for key, value in logs.items():
            if key.endswith("loss") and not math.isfinite(value):
                raise TrainingDiverged(f"{key} became {value} in {self.stage} at epoch {epoch + 1}")
        lr = _current_learning_rate(self.model)
        record: dict[str, Any] = {
            "stage": self.stage,
            "epoch": epoch + 1,
            "epochs": self.params.get("epochs"),
            **{k: round(v, 6) for k, v in logs.items()},
        }
        if lr is not None:
            record["learning_rate"] = float(f"{lr:.6g}")
        self.clock.history.append(record)
        self.clock.done_epochs += 1
        self.clock.trained_epochs += 1
        self.epochs_run += 1
        self.observer.epoch_ended(record, progress=self.clock.progress(), eta_s=self.clock.eta_s())


def _current_learning_rate(model: keras.Model) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None
