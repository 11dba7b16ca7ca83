"""training.export: a trained model becomes a SavedModel version TensorFlow Serving could serve,
with the metadata a reader needs to trust it (data, recipe, seed, figures).

Tiny models are trained once for the module (seconds, on slices of the real data) and exported
the way `run_training` does; the tests then load the folders as a server would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import data, versions
from training.cars import FEATURE_NAMES
from training.export import ExportedVersion, export_version
from training.hyperparameters import DigitHyperparameters, MpgHyperparameters, PromotePolicy
from training.litert import LITERT_FILE
from training.metrics import classification_metrics, regression_metrics
from training.pipeline import train
from training.progress import SilentProgress
from training.promotion import decide_promotion
from training.signatures import SERVING_SIGNATURE_KEY, SIGNATURES
from training.train import TrainedModel

pytestmark = [pytest.mark.slow, pytest.mark.data]

TINY = {
    "digit": DigitHyperparameters.model_validate(
        {
            "architecture": "mlp",
            "epochs": 2,
            "hidden_units": [32],
            "max_train_samples": 2000,
            "seed": 3,
        }
    ),
    # Two members, so the averaging inside the exported model is exercised too.
    "mpg": MpgHyperparameters.model_validate(
        {
            "epochs": 4,
            "ensemble_size": 2,
            "hidden_units": [16],
            "early_stopping_patience": 0,
            "seed": 5,
        }
    ),
}
COMMAND = "pytest tests/training/test_export.py"


@dataclass(frozen=True)
class Export:
    trained: TrainedModel
    exported: ExportedVersion
    data_sha256: dict[str, str]
    hp: Any


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, data_paths) -> dict[str, Export]:  # type: ignore[no-untyped-def]
    models = tmp_path_factory.mktemp("exported")
    result = {}
    for name, hp in TINY.items():
        trained, sha = train(name, hp, paths=data_paths, observer=SilentProgress())
        promotion = decide_promotion(models, name, trained.metrics, PromotePolicy.auto)
        exported = export_version(
            trained, models, promotion=promotion, data_sha256=sha, command=COMMAND
        )
        result[name] = Export(trained, exported, sha, hp)
    return result


def _serving(export: Export) -> Any:
    return tf.saved_model.load(str(export.exported.path)).signatures[SERVING_SIGNATURE_KEY]


def _mpg_test_features(auto_mpg) -> tuple[dict[str, np.ndarray], np.ndarray]:  # type: ignore[no-untyped-def]
    _, test = data.standard_split(auto_mpg)
    return data.features_of(test), test["mpg"].to_numpy()


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_the_version_is_in_the_tensorflow_serving_layout(
    exports: dict[str, Export], name: str
) -> None:
    exported = exports[name].exported
    assert exported.version == 1
    assert exported.path == exported.path.parent.parent / name / "1"
    assert (exported.path / "saved_model.pb").is_file()
    assert (exported.path / "variables" / "variables.index").is_file()
    assert (exported.path / versions.METADATA_FILE).is_file()
    assert [p.name for p in exported.path.parent.iterdir()] == ["1"]  # no temporary left over


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_the_serving_signature_has_exactly_the_named_tensors(
    exports: dict[str, Export], name: str
) -> None:
    loaded = tf.saved_model.load(str(exports[name].exported.path))
    assert SERVING_SIGNATURE_KEY in loaded.signatures
    serving = loaded.signatures[SERVING_SIGNATURE_KEY]
    contract = SIGNATURES[name]
    args, inputs = serving.structured_input_signature
    assert args == ()
    assert set(inputs) == set(contract.input_names)
    for spec in contract.inputs:
        assert inputs[spec.name].shape.as_list() == list(spec.shape)
        assert inputs[spec.name].dtype == tf.dtypes.as_dtype(spec.dtype)
    outputs = serving.structured_outputs
    assert set(outputs) == set(contract.output_names)
    for spec in contract.outputs:
        assert outputs[spec.name].shape.as_list() == list(spec.shape)
        assert outputs[spec.name].dtype == tf.dtypes.as_dtype(spec.dtype)


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_the_digit_model_returns_probabilities(
    exports: dict[str, Export], mnist, batch: int
) -> None:  # type: ignore[no-untyped-def]
    images = mnist.x_test[:batch].astype(np.float32) / 255.0
    probabilities = _serving(exports["digit"])(image=tf.constant(images))["probabilities"].numpy()
    assert probabilities.shape == (batch, 10)
    assert probabilities.min() >= 0.0
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 78])
def test_the_mpg_model_takes_raw_car_features(
    exports: dict[str, Export], auto_mpg, batch: int
) -> None:  # type: ignore[no-untyped-def]
    features, _ = _mpg_test_features(auto_mpg)
    inputs = {name: tf.constant(column[:batch]) for name, column in features.items()}
    mpg = _serving(exports["mpg"])(**inputs)["mpg"].numpy()
    assert mpg.shape == (batch,)
    assert np.isfinite(mpg).all()


def test_the_exported_digit_model_computes_what_the_keras_model_does(
    exports: dict[str, Export], mnist
) -> None:  # type: ignore[no-untyped-def]
    images = mnist.x_test[:256].astype(np.float32) / 255.0
    exported = _serving(exports["digit"])(image=tf.constant(images))["probabilities"].numpy()
    original = keras.ops.convert_to_numpy(exports["digit"].trained.model(images, training=False))
    np.testing.assert_allclose(exported, original, rtol=1e-5, atol=1e-6)


def test_the_exported_mpg_model_computes_what_the_keras_model_does(
    exports: dict[str, Export], auto_mpg
) -> None:  # type: ignore[no-untyped-def]
    features, _ = _mpg_test_features(auto_mpg)
    exported = _serving(exports["mpg"])(**{k: tf.constant(v) for k, v in features.items()})[
        "mpg"
    ].numpy()
    original = keras.ops.convert_to_numpy(exports["mpg"].trained.model(features, training=False))
    np.testing.assert_allclose(exported, original.reshape(-1), rtol=1e-5, atol=1e-4)


def test_the_exported_mpg_model_encodes_origin_inside(exports: dict[str, Export]) -> None:
    """The same car made in the USA, Europe and Japan: raw codes in, three different answers."""
    car = {"cylinders": 4.0, "displacement": 120.0, "horsepower": 90.0, "weight": 2400.0,
           "acceleration": 15.0, "model_year": 78.0}  # fmt: skip
    inputs = {name: tf.constant([car.get(name, 0.0)] * 3, tf.float32) for name in FEATURE_NAMES}
    inputs["origin"] = tf.constant([1.0, 2.0, 3.0])
    mpg = _serving(exports["mpg"])(**inputs)["mpg"].numpy()
    assert len(set(mpg.round(5).tolist())) == 3


def test_the_digit_metadata_metrics_are_what_the_saved_model_scores(
    exports: dict[str, Export], mnist
) -> None:  # type: ignore[no-untyped-def]
    serving = _serving(exports["digit"])
    images = mnist.x_test.astype(np.float32) / 255.0
    probabilities = np.concatenate(
        [
            serving(image=tf.constant(images[i : i + 2500]))["probabilities"].numpy()
            for i in range(0, 10000, 2500)
        ]
    )
    measured = classification_metrics(mnist.y_test, probabilities)
    recorded = exports["digit"].exported.metadata["metrics"]
    assert recorded["accuracy"] == pytest.approx(measured["accuracy"], abs=1e-4)
    assert recorded["loss"] == pytest.approx(measured["loss"], rel=1e-3)
    assert recorded["samples"] == 10000


def test_the_mpg_metadata_metrics_are_what_the_saved_model_scores(
    exports: dict[str, Export], auto_mpg
) -> None:  # type: ignore[no-untyped-def]
    features, targets = _mpg_test_features(auto_mpg)
    predictions = _serving(exports["mpg"])(**{k: tf.constant(v) for k, v in features.items()})[
        "mpg"
    ].numpy()
    measured = regression_metrics(targets, predictions)
    recorded = exports["mpg"].exported.metadata["metrics"]
    for key in ("mae", "mse", "rmse", "r2"):
        assert recorded[key] == pytest.approx(measured[key], rel=1e-4), key
    assert recorded["samples"] == 78


def _check_common_metadata(
    export: Export, name: str, data_file: data.DataFile, data_paths
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    metadata = versions.read_metadata(export.exported.path)
    assert metadata is not None
    assert metadata == export.exported.metadata
    assert metadata["model"] == name
    assert metadata["version"] == 1
    created = datetime.fromisoformat(metadata["created_at"])
    assert created.tzinfo is not None
    assert timedelta(0) <= datetime.now(UTC) - created < timedelta(hours=1)
    assert metadata["hyperparameters"] == export.hp.model_dump(mode="json")
    assert type(export.hp).model_validate(metadata["hyperparameters"]) == export.hp
    assert metadata["seed"] == export.hp.seed
    assert metadata["parameters"] == export.trained.model.count_params() > 0
    assert metadata["training_seconds"] > 0
    assert metadata["device"] == "CPU" or metadata["device"].startswith("GPU: ")
    assert metadata["tensorflow_version"] == tf.__version__
    path = data.locate(data_file, data_paths.data_dir, data_paths.cache_dir)
    assert metadata["data_sha256"] == {
        data_file.name: hashlib.sha256(path.read_bytes()).hexdigest()
    }
    assert metadata["command"] == COMMAND
    assert metadata["promotion"]["promoted"] is True
    assert metadata["promotion"]["policy"] == "auto"
    contract = SIGNATURES[name]
    assert set(metadata["signature"]["inputs"]) == set(contract.input_names)
    assert set(metadata["signature"]["outputs"]) == set(contract.output_names)
    for record in metadata["history"]:
        assert {"stage", "epoch", "epochs", "loss", "val_loss", "learning_rate"} <= set(record)
    return metadata


def test_the_digit_metadata_has_every_field(exports: dict[str, Export], data_paths) -> None:  # type: ignore[no-untyped-def]
    metadata = _check_common_metadata(exports["digit"], "digit", data.MNIST_FILE, data_paths)
    metrics = metadata["metrics"]
    assert 0.5 < metrics["accuracy"] <= 1.0  # 2 epochs on 1,800 images: far better than chance
    assert metrics["loss"] > 0
    for key in ("precision", "recall", "f1"):
        assert len(metrics[key]) == 10
        assert all(0.0 <= value <= 1.0 for value in metrics[key])
    assert metrics["macro_f1"] == pytest.approx(np.mean(metrics["f1"]), abs=1e-5)
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10)
    assert confusion.sum() == 10000
    assert confusion.sum(axis=1).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.trace(confusion) / 10000 == pytest.approx(metrics["accuracy"])
    assert [(r["stage"], r["epoch"]) for r in metadata["history"]] == [("train", 1), ("train", 2)]
    assert metadata["train_samples"] == 1800
    assert metadata["validation_samples"] == 200


def test_the_mpg_metadata_has_every_field(exports: dict[str, Export], data_paths) -> None:  # type: ignore[no-untyped-def]
    metadata = _check_common_metadata(exports["mpg"], "mpg", data.AUTO_MPG_FILE, data_paths)
    metrics = metadata["metrics"]
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["mse"]))
    assert 0 < metrics["mae"] < 8
    assert metrics["r2"] < 1
    stages = [(r["stage"], r["epoch"]) for r in metadata["history"]]
    assert stages == [(f"member {m}/2", e) for m in (1, 2) for e in range(1, 5)]
    assert metadata["train_samples"] == 314
    assert metadata["test_samples"] == 78
    assert set(metadata["feature_ranges"]) == set(FEATURE_NAMES)


def test_a_second_export_is_version_2_and_leaves_version_1_alone(
    exports: dict[str, Export], tmp_path: Path
) -> None:
    """Into a folder of its own, so the module's other tests still see a single version."""
    trained = exports["mpg"].trained
    always = decide_promotion(tmp_path, "mpg", trained.metrics, PromotePolicy.always)
    first = export_version(trained, tmp_path, promotion=always, data_sha256={}, command="first")
    before = (first.path / "saved_model.pb").read_bytes()
    second = export_version(trained, tmp_path, promotion=always, data_sha256={}, command="second")
    assert (first.version, second.version) == (1, 2)
    assert second.path == tmp_path / "mpg" / "2"
    assert (first.path / "saved_model.pb").read_bytes() == before
    assert first.metadata["command"] == versions.read_metadata(first.path)["command"] == "first"  # type: ignore[index]
    assert second.metadata["version"] == 2
    assert versions.read_metadata(second.path)["command"] == "second"  # type: ignore[index]


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_the_version_carries_a_litert_copy_that_computes_the_same(
    exports: dict[str, Export], name: str, mnist, auto_mpg
) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    copy = exports[name].exported.path / LITERT_FILE
    runner = Interpreter(model_content=copy.read_bytes(), num_threads=1).get_signature_runner(
        SERVING_SIGNATURE_KEY
    )
    contract = SIGNATURES[name]
    assert set(runner.get_input_details()) == set(contract.input_names)
    assert set(runner.get_output_details()) == set(contract.output_names)
    if name == "digit":
        inputs = {"image": mnist.x_test[:200].astype(np.float32) / 255.0}
        tolerance = 1e-4
    else:
        inputs, _ = _mpg_test_features(auto_mpg)
        tolerance = 1e-3
    (output,) = contract.output_names
    expected = _serving(exports[name])(**inputs)[output].numpy()
    assert np.abs(runner(**inputs)[output] - expected).max() <= tolerance


def test_a_model_the_converter_refuses_is_exported_without_a_copy(
    exports: dict[str, Export], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    def refuse(saved_model: Path) -> bytes:  # failure injection: a converter that gives up
        raise RuntimeError("'tf.BesselI0e' op is neither a custom op nor a flex op")

    monkeypatch.setattr("training.litert.convert_to_litert", refuse)
    export = exports["mpg"]
    exported = export_version(
        export.trained,
        tmp_path,
        promotion=decide_promotion(tmp_path, "mpg", export.trained.metrics, PromotePolicy.auto),
        data_sha256=export.data_sha256,
        command=COMMAND,
    )
    assert (exported.path / "saved_model.pb").is_file()
    assert not (exported.path / LITERT_FILE).exists()
    assert "LiteRT has no built-in operator for BesselI0e" in caplog.text
