"""The serving contract of each model: the named inputs and outputs of its SavedModel signature.

Export writes exactly these; the service checks a loaded version against them and describes
them to TensorFlow Serving and Open Inference Protocol clients.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.cars import FEATURE_NAMES

SERVING_SIGNATURE_KEY = "serving_default"
IMAGE_SIZE = 28
NUM_CLASSES = 10


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | None, ...]
    """None is the batch dimension."""
    dtype: str = "float32"


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)


SIGNATURES: dict[str, Signature] = {
    "digit": Signature(
        inputs=(TensorSpec("image", (None, IMAGE_SIZE, IMAGE_SIZE)),),
        outputs=(TensorSpec("probabilities", (None, NUM_CLASSES)),),
    ),
    "mpg": Signature(
        inputs=tuple(TensorSpec(name, (None,)) for name in FEATURE_NAMES),
        outputs=(TensorSpec("mpg", (None,)),),
    ),
}
