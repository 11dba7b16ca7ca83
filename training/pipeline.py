"""A whole training run as the command line and the job worker start it: find and check the
data, set up the device, train, decide promotion, export the next version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training import data, versions
from training.devices import configure_device
from training.export import ExportedVersion, export_version
from training.hyperparameters import (
    DigitHyperparameters,
    MpgHyperparameters,
    PromotePolicy,
    StartFrom,
    TrainingHyperparameters,
    UserSamples,
)
from training.progress import ProgressObserver
from training.promotion import decide_promotion
from training.served_model import ServedModelError, saved_model_probabilities
from training.train import TrainedModel, train_digit, train_mpg
from training.user_samples import (
    UserSamplesError,
    UserSampleSplit,
    load_samples_npz,
    split_held_out,
)


@dataclass(frozen=True)
class DataPaths:
    data_dir: Path | None
    """The configured data folder (DATA_DIR); None to use the cache and downloads only."""
    cache_dir: Path
    download: bool = True
    user_samples: Path | None = None
    """Accepted samples (.npz in the MNIST layout, as `GET /samples/export` answers), read
    when the digit hyperparameters say user_samples=accepted."""


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
    start_from = None
    if isinstance(hp, DigitHyperparameters) and hp.start_from is StartFrom.served:
        start_from = _served_dir(models_dir, name, settings_pin)
        if start_from is None:
            raise ServedModelError(
                "start_from=served needs a served digit version to fine-tune; there is none: "
                "train with start_from=scratch"
            )
    trained, data_sha256 = train(name, hp, paths=paths, observer=observer, start_from=start_from)
    held_out = trained.held_out_user_samples
    served_user_accuracy = None
    # The version served now, after training, is the one promotion compares with.
    served_now = _served_dir(models_dir, name, settings_pin)
    if held_out is not None and served_now is not None:
        served_user_accuracy = held_out_accuracy(served_now, held_out)
    promotion = decide_promotion(
        models_dir,
        name,
        trained.metrics,
        promote,
        settings_pin,
        served_user_samples_accuracy=served_user_accuracy,
    )
    return export_version(
        trained,
        models_dir,
        promotion=promotion,
        data_sha256=data_sha256,
        command=command,
        note=note,
    )


def _served_dir(models_dir: Path, name: str, settings_pin: int | None) -> Path | None:
    served = versions.served_version(models_dir, name, settings_pin)
    return None if served is None else versions.version_dir(models_dir, name, served)


def held_out_accuracy(version_dir: Path, samples: UserSampleSplit) -> float:
    """The accuracy of the SavedModel in `version_dir` on the held-out user samples."""
    probabilities = saved_model_probabilities(
        version_dir, samples.x_held_out.astype("float32") / 255.0
    )
    return float((probabilities.argmax(axis=1) == samples.y_held_out).mean())


def train(
    name: str,
    hp: TrainingHyperparameters,
    *,
    paths: DataPaths,
    observer: ProgressObserver,
    start_from: Path | None = None,
) -> tuple[TrainedModel, dict[str, str]]:
    """Trains without exporting; returns the model and the sha256 of the data it used.
    `start_from`: a digit version folder to fine-tune."""
    device = configure_device(mixed_precision=hp.mixed_precision)
    if name == "digit" and isinstance(hp, DigitHyperparameters):
        path = data.locate(
            data.MNIST_FILE, paths.data_dir, paths.cache_dir, download=paths.download
        )
        sha256 = {path.name: data.sha256_of(path)}
        user_samples = None
        if hp.user_samples is UserSamples.accepted:
            if paths.user_samples is None:
                raise UserSamplesError(
                    "user_samples=accepted needs the accepted samples: a job gets them from "
                    "the job database; the command line takes --samples-file FILE (an export "
                    "from GET /samples/export)"
                )
            x, y = load_samples_npz(paths.user_samples)
            user_samples = split_held_out(x, y, hp.user_samples_holdout, hp.seed)
            sha256[paths.user_samples.name] = data.sha256_of(paths.user_samples)
        trained = train_digit(
            hp,
            data.load_mnist(path),
            device,
            observer,
            user_samples=user_samples,
            start_from=start_from,
        )
        observer.finished()
        return trained, sha256
    elif name == "mpg" and isinstance(hp, MpgHyperparameters):
        path = data.locate(
            data.AUTO_MPG_FILE, paths.data_dir, paths.cache_dir, download=paths.download
        )
        trained = train_mpg(hp, data.load_auto_mpg(path), device, observer)
    else:
        raise ValueError(f"no training for model {name!r} with {type(hp).__name__}")
    observer.finished()
    return trained, {path.name: data.sha256_of(path)}
