"""Named recipes of the digit model (`python -m training digit --preset NAME`) and what a GPU
changes in a recipe that does not say otherwise.

* `default`: the schema's defaults, chosen to reach 99.5% MNIST test accuracy within
  10 minutes on a 2-core CPU (measurements in bench/RESULTS.md, "Training time").
* `best`: a wider network trained longer (99.61% MNIST test accuracy with seed 0).

Every choice in both was made on the validation split (the last 6,000 training images).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.hyperparameters import DigitArchitecture, DigitHyperparameters

if TYPE_CHECKING:  # the command line imports presets before Keras
    from training.devices import TrainingDevice

DIGIT_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "best": {
        "conv_filters": [32, 64],
        "epochs": 15,
        "dropout": 0.4,
        "learning_rate": 3e-3,
        "lr_schedule": "one_cycle",
    },
}

GPU_BATCH_SIZE = 512
"""A GPU is idle between small batches; 512 keeps it busy on 28x28 images."""


def for_device(hp: DigitHyperparameters, device: TrainingDevice) -> DigitHyperparameters:
    """On a GPU, the CNN trains at `GPU_BATCH_SIZE` with a matched learning rate unless the
    job set its batch size or learning rate itself; on a CPU, `hp` is returned as it is."""
    if not device.gpu or hp.architecture is not DigitArchitecture.cnn:
        return hp
    if {"batch_size", "learning_rate"} & hp.model_fields_set:
        return hp
    # Adam's rate grows with the square root of the batch (4x the batch, 2x the rate).
    scale = (GPU_BATCH_SIZE / hp.batch_size) ** 0.5
    return hp.model_copy(
        update={"batch_size": GPU_BATCH_SIZE, "learning_rate": hp.learning_rate * scale}
    )
