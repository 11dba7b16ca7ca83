"""One timed training run of the digit model, in its own process (`bench.train` starts it):
`python -m bench.training_run --json OUT [--architecture mlp] [--epochs N] [--max-train-samples N]`.

It trains through `training.pipeline.train`, exactly as `python -m training digit` does but
without exporting, with an observer that timestamps every epoch. The accuracy per epoch is the
validation accuracy Keras reports (the held-out tail of the training set, what the run itself
sees); the test accuracy is measured once, on the weights the run keeps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


class EpochTimer:
    """A `training.progress.ProgressObserver` that records when each epoch ends."""

    def __init__(self) -> None:
        self.device = ""
        self.started_at = 0.0
        self.epochs: list[dict[str, Any]] = []

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        self.device = device
        self.started_at = time.monotonic()

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        elapsed = time.monotonic() - self.started_at
        previous = self.epochs[-1]["elapsed_s"] if self.epochs else 0.0
        self.epochs.append(
            {
                "epoch": record["epoch"],
                "seconds": round(elapsed - previous, 2),
                "elapsed_s": round(elapsed, 2),
                "accuracy": record.get("accuracy"),
                "val_accuracy": record.get("val_accuracy"),
                "loss": record.get("loss"),
                "val_loss": record.get("val_loss"),
            }
        )
        print(
            f"  epoch {record['epoch']}: {elapsed - previous:.1f} s, "
            f"val_accuracy {record.get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )

    def batch_ended(self, step: int, steps: int | None) -> None:
        pass

    def finished(self) -> None:
        pass


def run(architecture: str, epochs: int | None, max_train_samples: int | None) -> dict[str, Any]:
    from service.settings import Settings
    from training.hyperparameters import DigitHyperparameters
    from training.pipeline import DataPaths, train

    given: dict[str, Any] = {"architecture": architecture}
    if epochs is not None:
        given["epochs"] = epochs
    if max_train_samples is not None:
        given["max_train_samples"] = max_train_samples
    hp = DigitHyperparameters(**given)
    settings = Settings()
    paths = DataPaths(settings.data_dir, settings.cache_dir, settings.download_data)
    timer = EpochTimer()
    began = time.monotonic()
    trained, _ = train("digit", hp, paths=paths, observer=timer)
    return {
        "architecture": architecture,
        "hyperparameters": hp.model_dump(mode="json"),
        "device": trained.device,
        "parameters": trained.parameters,
        "train_samples": trained.extra.get("train_samples"),
        "epochs": timer.epochs,
        "training_seconds": round(trained.training_seconds, 1),
        "wall_seconds": round(time.monotonic() - began, 1),
        "test_accuracy": trained.metrics["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training_run")
    parser.add_argument("--architecture", choices=("cnn", "mlp"), default="cnn")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--json", type=Path, required=True)
    options = parser.parse_args()
    result = run(options.architecture, options.epochs, options.max_train_samples)
    options.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
