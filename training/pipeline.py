"""A whole training run as the command line and the job worker start it: find and check the
data, set up the device, train, decide promotion, export the next version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training import data
from training.devices import configure_device
from training.export import ExportedVersion, export_version
from training.hyperparameters import (
    DigitHyperparameters,
    MpgHyperparameters,
    PromotePolicy,
    TrainingHyperparameters,
)
from training.progress import ProgressObserver
from training.promotion import decide_promotion
from training.train import TrainedModel, train_digit, train_mpg


@dataclass(frozen=True)
class DataPaths:
    data_dir: Path | None
    """The configured data folder (DATA_DIR); None to use the cache and downloads only."""
    cache_dir: Path
    download: bool = True


def run_training(
    name: str,
    hp: TrainingHyperparameters,
    *,
    paths: DataPaths,
    models_dir: Path,
    observer: ProgressObserver,
    promote: PromotePolicy,
    command: str,
    settings_pin: int | None = None,
    note: str | None = None,
) -> ExportedVersion:
    """Trains model `name` with `hp` and exports it as a new version of `models_dir/name`;
    `note` (how the run was chosen, say) goes into its metadata."""
    trained, data_sha256 = train(name, hp, paths=paths, observer=observer)
    promotion = decide_promotion(models_dir, name, trained.metrics, promote, settings_pin)
    return export_version(
        trained,
        models_dir,
        promotion=promotion,
        data_sha256=data_sha256,
        command=command,
        note=note,
    )


def train(
    name: str, hp: TrainingHyperparameters, *, paths: DataPaths, observer: ProgressObserver
) -> tuple[TrainedModel, dict[str, str]]:
    """Trains without exporting; returns the model and the sha256 of the data it used."""
    device = configure_device(mixed_precision=hp.mixed_precision)
    if name == "digit" and isinstance(hp, DigitHyperparameters):
        path = data.locate(
            data.MNIST_FILE, paths.data_dir, paths.cache_dir, download=paths.download
        )
        trained = train_digit(hp, data.load_mnist(path), device, observer)
    elif name == "mpg" and isinstance(hp, MpgHyperparameters):
        path = data.locate(
            data.AUTO_MPG_FILE, paths.data_dir, paths.cache_dir, download=paths.download
        )
        trained = train_mpg(hp, data.load_auto_mpg(path), device, observer)
    else:
        raise ValueError(f"no training for model {name!r} with {type(hp).__name__}")
    observer.finished()
    return trained, {path.name: data.sha256_of(path)}
