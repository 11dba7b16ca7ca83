"""The served version as a training run uses it: the network and weights to fine-tune from, and
its answers on the held-out user samples, which promotion compares with the new version's.

Keras 3 cannot load a SavedModel folder as a Keras model, so fine-tuning rebuilds the network
from the version's recorded hyperparameters and copies the SavedModel's variables into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from training import versions
from training.digit_model import GATE_LAYER_PREFIX
from training.hyperparameters import NETWORK_FIELDS, DigitHyperparameters
from training.signatures import SERVING_SIGNATURE_KEY, SIGNATURES

EVALUATION_BATCH = 1024


class ServedModelError(Exception):
    """There is no served version to start from, or it cannot be rebuilt; says what to do."""


def fine_tuning_hyperparameters(hp: DigitHyperparameters, folder: Path) -> DigitHyperparameters:
    """`hp` with the network fields of the version in `folder` (its metadata's hyperparameters)."""
    recorded = (versions.read_metadata(folder) or {}).get("hyperparameters")
    if not isinstance(recorded, dict):
        raise ServedModelError(
            f"version {folder.name} records no hyperparameters, so its network cannot be "
            "rebuilt for fine-tuning: train with start_from=scratch"
        )
    network = {name: recorded[name] for name in NETWORK_FIELDS if name in recorded}
    return DigitHyperparameters.model_validate({**hp.model_dump(), **network})


RECIPE_FIELDS = ("version", "command", "created_at", "note", "hyperparameters", "started_from")


def recipe(folder: Path) -> dict[str, Any]:
    """How the version in `folder` was trained (its command, note and hyperparameters, and in
    turn what it started from), for the metadata of a version fine-tuned from it."""
    metadata = versions.read_metadata(folder) or {}
    return {name: metadata[name] for name in RECIPE_FIELDS if name in metadata}


def _weights(variables: list[Any]) -> list[Any]:
    # Random-number generator states are not weights, and their count depends on how many
    # layers the exporting process had created before. A not-a-digit gate is trained anew on
    # every run, so only the classifier's weights are copied.
    return [
        v
        for v in variables
        if "seed_generator" not in _name(v) and not _name(v).startswith(GATE_LAYER_PREFIX)
    ]


def _name(variable: Any) -> str:
    return str(getattr(variable, "path", None) or variable.name)


def load_saved_weights(model: keras.Model, folder: Path) -> None:
    """Copies the classifier weights of the SavedModel in `folder` into `model`, which must be
    the same classifier (same layers in the same order); raises ServedModelError when it is
    not."""
    import tensorflow as tf

    saved = _weights(list(tf.saved_model.load(str(folder)).variables))
    target = _weights(list(model.variables))
    shapes = [tuple(v.shape) for v in saved]
    if shapes != [tuple(v.shape) for v in target]:
        raise ServedModelError(
            f"version {folder.name}'s weights do not fit the network its metadata describes: "
            "train with start_from=scratch"
        )
    for source, destination in zip(saved, target, strict=True):
        destination.assign(source.numpy())


def saved_model_probabilities(folder: Path, x: np.ndarray) -> np.ndarray:
    """The class probabilities of the SavedModel in `folder` through its serving signature
    (as the service calls it) for images `x` (N x 28 x 28 float32, 0..1)."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(folder)).signatures[SERVING_SIGNATURE_KEY]
    (image,) = SIGNATURES["digit"].input_names
    (probabilities,) = SIGNATURES["digit"].output_names
    chunks = []
    for start in range(0, len(x), EVALUATION_BATCH):
        outputs = serve(**{image: tf.constant(x[start : start + EVALUATION_BATCH], tf.float32)})
        chunks.append(outputs[probabilities].numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)
