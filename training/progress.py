"""How a training run reports progress and how it is stopped from outside.

The command line prints progress; the job worker stores it and checks for cancellation. Both
implement `ProgressObserver`; `KerasProgress` adapts one to a Keras callback.
"""

from __future__ import annotations

import math
import time
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

    def batch_ended(self, step: int, steps: int | None) -> None:
        """Called after each batch (`step` of `steps` in the epoch); raises TrainingCancelled
        to stop the run (so may `epoch_ended`)."""

    def finished(self) -> None:
        """Called once training is over, before anything is exported: the last chance to raise
        TrainingCancelled."""


class SilentProgress:
    """An observer that reports nothing and never cancels."""

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        pass

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        pass

    def batch_ended(self, step: int, steps: int | None) -> None:
        pass

    def finished(self) -> None:
        pass


class KerasProgress(keras.callbacks.Callback):
    """Forwards a stage of `fit` to an observer, checks for cancellation between batches and
    fails fast on a diverging loss. `done_epochs`/`total_epochs` place the stage in the run."""

    def __init__(
        self,
        observer: ProgressObserver,
        *,
        stage: str,
        done_epochs: int,
        total_epochs: int,
        history: list[dict[str, Any]],
        started_at: float,
    ) -> None:
        super().__init__()
        self.observer = observer
        self.stage = stage
        self.done_epochs = done_epochs
        self.total_epochs = total_epochs
        self.history = history
        self.started_at = started_at

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"loss became {float(loss)} in {self.stage} at batch {batch + 1}; "
                "lower the learning rate or change the initializer"
            )
        self.observer.batch_ended(batch + 1, self.params.get("steps"))

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
        self.history.append(record)
        self.done_epochs += 1
        progress = min(1.0, self.done_epochs / max(1, self.total_epochs))
        elapsed = time.monotonic() - self.started_at
        eta = elapsed / progress * (1 - progress) if progress > 0 else None
        self.observer.epoch_ended(record, progress=progress, eta_s=eta)


def _current_learning_rate(model: keras.Model) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None
