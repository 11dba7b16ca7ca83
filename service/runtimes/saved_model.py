"""The SavedModel's serving signature as a runner: TensorFlow computes every answer."""

from __future__ import annotations

from typing import Any

from service.runtimes import Tensors
from training.signatures import SERVING_SIGNATURE_KEY


class SavedModelRunner:
    """Calls the serving signature of a loaded SavedModel (TensorFlow's calls are
    thread-safe)."""

    runtime = "tensorflow"

    def __init__(self, saved_model: Any) -> None:
        self.saved_model = saved_model  # keeps the variables the signature captures alive
        self._function = saved_model.signatures[SERVING_SIGNATURE_KEY]

    def __call__(self, inputs: Tensors) -> Tensors:
        import tensorflow as tf

        tensors = {k: tf.convert_to_tensor(v, dtype=tf.float32) for k, v in inputs.items()}
        outputs = self._function(**tensors)
        return {k: v.numpy() for k, v in outputs.items()}
