"""Writes a trained model as the next version of its SavedModel, with its metadata."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras

from training import versions
from training.promotion import Promotion
from training.saved_model import write_saved_model
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
    note: str | None = None,
) -> ExportedVersion:
    """Exports `trained` as `<models_dir>/<name>/<next integer>/`, atomically."""
    signature = SIGNATURES[trained.name]

    def write(folder: Path) -> None:
        write_saved_model(trained.model, trained.name, folder)

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
            "tensorflow_version": _tensorflow_version(),
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "python_version": platform.python_version(),
            "data_sha256": data_sha256,
            "seed": trained.hyperparameters.get("seed"),
            "command": command,
            **({"note": note} if note else {}),
            "promotion": promotion.as_dict(),
            "signature": _describe(signature),
            **trained.extra,
        }

    version, path = versions.write_version(models_dir, trained.name, write, metadata)
    return ExportedVersion(trained.name, version, path, versions.read_metadata(path) or {})


def _tensorflow_version() -> str | None:
    """TensorFlow writes the SavedModel even when another backend trained."""
    for distribution in ("tensorflow", "tensorflow-cpu"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(distribution)
    return None


def _describe(signature: Signature) -> dict[str, Any]:
    def spec(s: Any) -> dict[str, Any]:
        return {"dtype": s.dtype, "shape": [-1 if d is None else d for d in s.shape]}

    return {
        "inputs": {s.name: spec(s) for s in signature.inputs},
        "outputs": {s.name: spec(s) for s in signature.outputs},
    }
