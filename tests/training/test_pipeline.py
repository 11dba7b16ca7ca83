"""training.pipeline and training.progress: a whole run, its progress reports, and the ways it
stops without exporting anything (cancellation, divergence, missing data)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from training import data, versions
from training.data import DataError
from training.hyperparameters import (
    HYPERPARAMETERS,
    DigitHyperparameters,
    MpgHyperparameters,
    PromotePolicy,
)
from training.pipeline import DataPaths, run_training
from training.progress import SilentProgress, TrainingCancelled, TrainingDiverged
from training.served_model import ServedModelError
from training.signatures import SERVING_SIGNATURE_KEY
from training.user_samples import UserSamplesError, write_samples_npz

pytestmark = [pytest.mark.slow, pytest.mark.data]

QUICK = {
    "digit": {"architecture": "mlp", "epochs": 1, "hidden_units": [16], "max_train_samples": 500},
    "mpg": {"epochs": 2, "ensemble_size": 1, "hidden_units": [8], "early_stopping_patience": 0},
}


class Recorder:
    """Remembers every call; raises TrainingCancelled at a chosen point."""

    def __init__(self, cancel_at: str | None = None, cancel_after: int = 0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.cancel_at = cancel_at
        self.cancel_after = cancel_after

    def _maybe_cancel(self, where: str) -> None:
        if (
            where == self.cancel_at
            and sum(1 for c, _ in self.calls if c == where) > self.cancel_after
        ):
            raise TrainingCancelled(f"cancelled in {where}")

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        self.calls.append(("started", (device, total_epochs, stages)))

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        self.calls.append(("epoch_ended", (record, progress, eta_s)))
        self._maybe_cancel("epoch_ended")

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        self.calls.append(("batch_ended", (step, steps, progress, eta_s)))
        self._maybe_cancel("batch_ended")

    def finished(self) -> None:
        self.calls.append(("finished", None))
        self._maybe_cancel("finished")

    def named(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]


def _run(name: str, models: Path, data_paths: DataPaths, observer: Any, **overrides: Any) -> Any:
    hp = HYPERPARAMETERS[name].model_validate({**QUICK[name], **overrides})
    return run_training(
        name,
        hp,
        paths=data_paths,
        models_dir=models,
        observer=observer,
        promote=PromotePolicy.auto,
        command=f"test {name}",
    )


def _nothing_written(models: Path, name: str) -> bool:
    folder = models / name
    return not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_run_training_exports_a_loadable_version(
    tiny_models: Path, data_paths: DataPaths, name: str
) -> None:
    assert versions.list_versions(tiny_models, name) == [1]
    assert versions.served_version(tiny_models, name) == 1
    path = versions.version_dir(tiny_models, name, 1)
    metadata = versions.read_metadata(path)
    assert metadata is not None
    assert metadata["command"] == "tests/conftest.py tiny_models"
    assert metadata["promotion"]["policy"] == "always"
    data_file = data.DATA_FILES["mnist" if name == "digit" else "auto-mpg"]
    located = data.locate(data_file, data_paths.data_dir, data_paths.cache_dir)
    assert metadata["data_sha256"] == {
        data_file.name: hashlib.sha256(located.read_bytes()).hexdigest()
    }
    assert SERVING_SIGNATURE_KEY in tf.saved_model.load(str(path)).signatures


def test_progress_is_reported_across_the_whole_run(tmp_path: Path, data_paths: DataPaths) -> None:
    observer = Recorder()
    exported = _run("mpg", tmp_path, data_paths, observer, ensemble_size=2, validation_split=0.2)
    [(device, total_epochs, stages)] = observer.named("started")
    assert (device, total_epochs, stages) == (exported.metadata["device"], 4, 2)
    epochs = observer.named("epoch_ended")
    assert [(r["stage"], r["epoch"]) for r, _, _ in epochs] == [
        ("member 1/2", 1), ("member 1/2", 2), ("member 2/2", 1), ("member 2/2", 2),
    ]  # fmt: skip
    progress = [p for _, p, _ in epochs]
    assert progress == pytest.approx([1 / 4, 2 / 4, 3 / 4, 1.0])
    assert all(eta is not None and eta >= 0 for _, _, eta in epochs)
    assert epochs[-1][2] == 0
    batches = observer.named("batch_ended")
    # 314 rows, a fifth held out: 251 rows in batches of 32 = 8 steps per epoch.
    assert [(step, steps) for step, steps, _, _ in batches[:8]] == [(s, 8) for s in range(1, 9)]
    assert len(batches) == 4 * 8
    # Per step, progress counts the run's steps; the ETA exists from the second step on.
    assert [p for _, _, p, _ in batches] == pytest.approx([(i + 1) / 32 for i in range(32)])
    assert batches[0][3] is None
    assert all(eta is not None and eta >= 0 for _, _, _, eta in batches[1:])
    assert [call for call, _ in observer.calls][-1] == "finished"
    assert exported.metadata["history"] == [record for record, _, _ in epochs]


def test_mpg_epochs_report_their_error_in_mpg(tmp_path: Path, data_paths: DataPaths) -> None:
    """The loss and `mae` of an mpg network are in standardised units; `mpg_mae` is the same
    error in miles per gallon, the unit of the test MAE."""
    exported = _run("mpg", tmp_path, data_paths, Recorder(), epochs=3, target_transform="mpg")
    history = exported.metadata["history"]
    assert all({"mpg_mae", "val_mpg_mae"} <= set(record) for record in history)
    # With a plain mpg target, the error in mpg is the standardised error times the target's
    # standard deviation over the training rows (several mpg).
    for record in history:
        ratio = record["mpg_mae"] / record["mae"]
        assert 5 < ratio < 10, record
        assert record["val_mpg_mae"] / record["val_mae"] == pytest.approx(ratio, rel=0.05)
    metric = exported.metadata["metrics"]["mae"]
    assert 0.3 * metric < history[-1]["val_mpg_mae"] < 3 * metric


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_cancelling_between_batches_stops_training_and_exports_nothing(
    tmp_path: Path, data_paths: DataPaths, name: str
) -> None:
    observer = Recorder(cancel_at="batch_ended", cancel_after=1)
    with pytest.raises(TrainingCancelled, match="cancelled in batch_ended"):
        _run(name, tmp_path, data_paths, observer, epochs=50)
    assert len(observer.named("batch_ended")) == 2  # stopped at once, not at the epoch's end
    assert observer.named("epoch_ended") == []
    assert observer.named("finished") == []
    assert _nothing_written(tmp_path, name)


@pytest.mark.parametrize("where", ["epoch_ended", "finished"])
def test_cancelling_later_still_exports_nothing(
    tmp_path: Path, data_paths: DataPaths, where: str
) -> None:
    observer = Recorder(cancel_at=where)
    with pytest.raises(TrainingCancelled):
        _run("mpg", tmp_path, data_paths, observer)
    assert _nothing_written(tmp_path, "mpg")


def test_a_diverging_run_raises_and_exports_nothing(tmp_path: Path, data_paths: DataPaths) -> None:
    observer = Recorder()
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf)") as caught:
        _run(
            "mpg",
            tmp_path,
            data_paths,
            observer,
            optimizer="sgd",
            learning_rate=10,
            loss="mse",
            epochs=20,
        )
    assert "lower the learning rate" in str(caught.value)
    assert observer.named("finished") == []
    assert _nothing_written(tmp_path, "mpg")


def test_an_exploding_initializer_is_caught_as_divergence(
    tmp_path: Path, data_paths: DataPaths
) -> None:
    with pytest.raises(TrainingDiverged):
        _run(
            "mpg",
            tmp_path,
            data_paths,
            SilentProgress(),
            kernel_initializer="constant",
            initializer_value=10,
            hidden_units=[256, 256, 256],
            loss="mse",
            epochs=20,
        )
    assert _nothing_written(tmp_path, "mpg")


def test_a_held_back_version_is_written_but_not_served(
    models_dir: Path, data_paths: DataPaths
) -> None:
    hp = MpgHyperparameters.model_validate(QUICK["mpg"])
    exported = run_training(
        "mpg", hp, paths=data_paths, models_dir=models_dir, observer=SilentProgress(),
        promote=PromotePolicy.never, command="test never",
    )  # fmt: skip
    assert exported.version == 2
    assert exported.metadata["promotion"]["promoted"] is False
    assert versions.list_versions(models_dir, "mpg") == [1, 2]
    assert versions.served_version(models_dir, "mpg") == 1


def test_auto_promotion_compares_with_the_served_version(
    models_dir: Path, data_paths: DataPaths
) -> None:
    served = versions.read_metadata(versions.version_dir(models_dir, "digit", 1))
    assert served is not None
    exported = _run("digit", models_dir, data_paths, SilentProgress())
    promotion = exported.metadata["promotion"]
    assert promotion["compared_with_version"] == 1
    assert promotion["compared_with_value"] == served["metrics"]["accuracy"]
    assert promotion["promoted"] is (
        exported.metadata["metrics"]["accuracy"] >= served["metrics"]["accuracy"]
    )


def test_missing_data_stops_the_run_before_training(tmp_path: Path) -> None:
    paths = DataPaths(data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache", download=False)
    (tmp_path / "empty").mkdir()
    observer = Recorder()
    with pytest.raises(DataError, match=r"mnist\.npz not found"):
        run_training(
            "digit", DigitHyperparameters.model_validate(QUICK["digit"]), paths=paths,
            models_dir=tmp_path / "models", observer=observer, promote=PromotePolicy.always,
            command="test",
        )  # fmt: skip
    assert observer.calls == []
    assert not (tmp_path / "models").exists()


def test_a_schema_that_does_not_match_the_model_is_refused(
    tmp_path: Path, data_paths: DataPaths
) -> None:
    with pytest.raises(ValueError, match="no training for model 'digit' with MpgHyperparameters"):
        run_training(
            "digit", MpgHyperparameters(), paths=data_paths, models_dir=tmp_path,
            observer=SilentProgress(), promote=PromotePolicy.always, command="test",
        )  # fmt: skip


def test_fine_tuning_needs_a_served_version(tmp_path: Path, data_paths: DataPaths) -> None:
    with pytest.raises(ServedModelError, match="there is none"):
        _run("digit", tmp_path, data_paths, SilentProgress(), start_from="served")
    assert _nothing_written(tmp_path, "digit")


def test_accepted_samples_need_their_file(tmp_path: Path, data_paths: DataPaths) -> None:
    with pytest.raises(UserSamplesError, match="--samples-file"):
        _run("digit", tmp_path, data_paths, SilentProgress(), user_samples="accepted")
    assert _nothing_written(tmp_path, "digit")


def test_a_run_on_user_samples_records_what_it_held_out_and_trained_on(
    tmp_path: Path, data_paths: DataPaths, mnist
) -> None:  # type: ignore[no-untyped-def]
    # 3 samples of each label; one of each held out: 10 tested, 20 trained on (x 3 repeats).
    rows = [int(i) for label in range(10) for i in np.flatnonzero(mnist.y_test == label)[:3]]
    samples = tmp_path / "samples.npz"
    write_samples_npz(samples, mnist.x_test[rows], mnist.y_test[rows])
    paths = DataPaths(data_paths.data_dir, data_paths.cache_dir, user_samples=samples)
    exported = _run(
        "digit", tmp_path, paths, SilentProgress(), user_samples="accepted", user_samples_repeat=3
    )
    metrics = exported.metadata["metrics"]
    assert (metrics["user_samples_count"], metrics["user_samples_trained"]) == (10, 20)
    assert metrics["user_samples_repeat"] == 3 and 0 <= metrics["user_samples_accuracy"] <= 1
    assert exported.metadata["train_samples"] == 450  # MNIST's rows, before the samples join
    assert set(exported.metadata["data_sha256"]) == {data.MNIST_FILE.name, "samples.npz"}
    # Nothing was served: promoted without a comparison, none recorded on user samples.
    assert exported.metadata["promotion"]["reason"] == "no version is served yet"
    assert "compared_with_user_samples_value" not in exported.metadata["promotion"]
