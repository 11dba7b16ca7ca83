"""The SavedModel of a trained Keras model, written by TensorFlow whatever backend trained it.

On the TensorFlow backend the model is exported in-process. On another backend (JAX, PyTorch)
the model's architecture (in float32: serving runs on CPUs) and its weights are handed to a
child process on the TensorFlow backend, which rebuilds the model, loads the weights and
exports it: `python -m training.saved_model HANDOVER_DIR TARGET_DIR NAME`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import keras

from training.litert import write_litert_copy
from training.signatures import SIGNATURES, Signature

ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.weights.h5"


def write_saved_model(model: keras.Model, name: str, folder: Path) -> None:
    """Writes `model` as a SavedModel in `folder` with model `name`'s serving signature, and
    its LiteRT copy beside it when the converter takes the model (`training.litert`)."""
    if keras.backend.backend() == "tensorflow":
        _export(model, SIGNATURES[name], folder)
        return
    with tempfile.TemporaryDirectory(prefix="perceptron-handover-") as handover:
        config = _in_float32(keras.saving.serialize_keras_object(model))
        (Path(handover) / ARCHITECTURE_FILE).write_text(json.dumps(config))
        model.save_weights(Path(handover) / WEIGHTS_FILE)
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        done = subprocess.run(
            [sys.executable, "-m", "training.saved_model", handover, str(folder), name],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"exporting through TensorFlow failed:\n{done.stderr[-4000:]}")


def _in_float32(config: Any) -> Any:
    """The serialised model with every mixed-precision policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _in_float32(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_in_float32(value) for value in config]
    return config


def _export(model: keras.Model, signature: Signature, folder: Path) -> None:
    """A SavedModel whose `serve`/`serving_default` signature takes and returns the named
    tensors of the model's serving contract, so TensorFlow Serving could serve the folder."""
    import tensorflow as tf

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
    write_litert_copy(folder)


def _rebuild_and_export(handover: Path, folder: Path, name: str) -> None:
    # The custom layers register themselves for deserialisation when imported.
    import training.digit_model
    import training.mpg_model  # noqa: F401

    config = json.loads((handover / ARCHITECTURE_FILE).read_text())
    model = keras.saving.deserialize_keras_object(config)
    model.load_weights(handover / WEIGHTS_FILE)
    _export(model, SIGNATURES[name], folder)


if __name__ == "__main__":
    if keras.backend.backend() != "tensorflow":
        sys.exit("run with KERAS_BACKEND=tensorflow")
    _rebuild_and_export(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
