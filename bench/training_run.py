"""One timed training run of the digit model, in its own process (`python -m bench train`
starts it): `python -m bench.training_run --json OUT [--set '{"epochs": 2}'] [--export]`.

It trains through `training.pipeline.train`, exactly as `python -m training digit` does, with an
observer that timestamps every epoch; with `--export` it also writes the SavedModel into a
temporary folder, so its wall time is the whole command's (data load, training, test
evaluation, export). The accuracy per epoch is the validation accuracy Keras reports (the
held-out tail of the training set, what the run itself sees); the test accuracy is measured
once, on the weights the run keeps. The backend and thread settings come from the environment
(`KERAS_BACKEND`, `TF_NUM_INTRAOP_THREADS`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
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
                "load": round(os.getloadavg()[0], 2),
                "accuracy": record.get("accuracy"),
                "val_accuracy": record.get("val_accuracy"),
                "loss": record.get("loss"),
                "val_loss": record.get("val_loss"),
                "eta_s": None if eta_s is None else round(eta_s, 1),
            }
        )
        print(
            f"  epoch {record['epoch']}: {elapsed - previous:.1f} s, "
            f"val_accuracy {record.get('val_accuracy', float('nan')):.4f}, "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        pass

    def finished(self) -> None:
        pass


def run(overrides: dict[str, Any], export: bool) -> dict[str, Any]:
    began = time.monotonic()
    cpu_began = time.process_time()
    import keras

    from service.settings import Settings
    from training.export import export_version
    from training.hyperparameters import DigitHyperparameters, PromotePolicy
    from training.pipeline import DataPaths, train
    from training.promotion import decide_promotion

    hp = DigitHyperparameters.model_validate(overrides)
    settings = Settings()
    paths = DataPaths(settings.data_dir, settings.cache_dir, settings.download_data)
    timer = EpochTimer()
    trained, sha = train("digit", hp, paths=paths, observer=timer)
    if export:
        with tempfile.TemporaryDirectory(prefix="bench-train-") as models:
            promotion = decide_promotion(
                Path(models), "digit", trained.metrics, PromotePolicy.always, None
            )
            export_version(
                trained, Path(models), promotion=promotion, data_sha256=sha, command="bench"
            )
    return {
        "overrides": overrides,
        "architecture": hp.architecture.value,
        "hyperparameters": trained.hyperparameters,
        "backend": keras.backend.backend(),
        "intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "device": trained.device,
        "parameters": trained.parameters,
        "train_samples": trained.extra.get("train_samples"),
        "epochs": timer.epochs,
        "training_seconds": round(trained.training_seconds, 1),
        "wall_seconds": round(time.monotonic() - began, 1),
        "cpu_seconds": round(time.process_time() - cpu_began, 1),
        "exported": export,
        "test_accuracy": trained.metrics["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training_run")
    parser.add_argument("--set", default="{}", help="hyperparameters (JSON object)")
    parser.add_argument("--export", action="store_true", help="export too, into a temp folder")
    parser.add_argument("--json", type=Path, required=True)
    options = parser.parse_args()
    result = run(json.loads(options.set), options.export)
    options.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
