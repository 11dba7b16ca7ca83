"""Writes a trained model as the next version of its SavedModel, with its metadata."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from training import versions
from training.promotion import Promotion
from training.signatures import SIGNATURES, Signature
from training.train import TrainedModel


@dataclass(frozen=True)
class ExportedVersion:
    name: str
    version: int
    path: Path
    metadata: dict[str, Any]


def export_version(
    trained: TrainedModel,
    models_dir: Path,
    *,
    promotion: Promotion,
    data_sha256: dict[str, str],
    command: str,
) -> ExportedVersion:
    """Exports `trained` as `<models_dir>/<name>/<next integer>/`, atomically."""
    signature = SIGNATURES[trained.name]

    def write(folder: Path) -> None:
        _write_saved_model(trained.model, signature, folder)

    def metadata(version: int) -> dict[str, Any]:
        return {
            "model": trained.name,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "hyperparameters": trained.hyperparameters,
            "metrics": trained.metrics,
            "history": trained.history,
            "parameters": trained.parameters,
            "training_seconds": round(trained.training_seconds, 1),
            "device": trained.device,
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "python_version": platform.python_version(),
            "data_sha256": data_sha256,
            "seed": trained.hyperparameters.get("seed"),
            "command": command,
            "promotion": promotion.as_dict(),
            "signature": _describe(signature),
            **trained.extra,
        }

    version, path = versions.write_version(models_dir, trained.name, write, metadata)
    return ExportedVersion(trained.name, version, path, versions.read_metadata(path) or {})


def _write_saved_model(model: keras.Model, signature: Signature, folder: Path) -> None:
    """A SavedModel whose `serve`/`serving_default` signature takes and returns the named
    tensors of the model's serving contract, so TensorFlow Serving could serve the folder."""
    input_spec = {
        spec.name: tf.TensorSpec(list(spec.shape), spec.dtype, name=spec.name)
        for spec in signature.inputs
    }
    (output_name,) = signature.output_names
    single_input = len(signature.inputs) == 1

    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        features = next(iter(inputs.values())) if single_input else inputs
        return {output_name: tf.cast(model(features, training=False), tf.float32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[input_spec])
    archive.write_out(str(folder), verbose=False)


def _describe(signature: Signature) -> dict[str, Any]:
    def spec(s: Any) -> dict[str, Any]:
        return {"dtype": s.dtype, "shape": [-1 if d is None else d for d in s.shape]}

    return {
        "inputs": {s.name: spec(s) for s in signature.inputs},
        "outputs": {s.name: spec(s) for s in signature.outputs},
    }
