"""training.presets and training.devices: named recipes, and what a GPU changes."""

from __future__ import annotations

import pytest

from training.devices import TrainingDevice, choose_precision
from training.hyperparameters import DigitHyperparameters
from training.presets import DIGIT_PRESETS, GPU_BATCH_SIZE, for_device

CPU = TrainingDevice("CPU", gpu=False)
GPU = TrainingDevice("GPU: test", gpu=True, precision="mixed_bfloat16")


def test_every_preset_is_a_valid_digit_recipe() -> None:
    for values in DIGIT_PRESETS.values():
        DigitHyperparameters.model_validate(values)
    assert DIGIT_PRESETS["default"] == {}


def test_a_cpu_keeps_the_recipe_as_it_is() -> None:
    hp = DigitHyperparameters()
    assert for_device(hp, CPU) is hp


def test_a_gpu_gets_a_large_batch_with_a_matched_rate_unless_the_job_chose() -> None:
    hp = for_device(DigitHyperparameters(), GPU)
    assert hp.batch_size == GPU_BATCH_SIZE
    assert hp.learning_rate == pytest.approx(DigitHyperparameters().learning_rate * 2)
    chosen = DigitHyperparameters(batch_size=64)
    assert for_device(chosen, GPU) is chosen
    mlp = DigitHyperparameters(architecture="mlp")  # type: ignore[arg-type]
    assert for_device(mlp, GPU) is mlp


@pytest.mark.parametrize(
    ("capabilities", "requested", "policy"),
    [
        (None, None, "float32"),
        (None, True, "float32"),  # no GPU: never half precision
        ([9.0], None, "mixed_bfloat16"),
        ([None], None, "mixed_bfloat16"),
        ([7.5], None, "mixed_float16"),
        ([9.0, 7.0], True, "mixed_float16"),
        ([9.0], False, "float32"),
    ],
)
def test_precision(
    capabilities: list[float | None] | None, requested: bool | None, policy: str
) -> None:
    assert choose_precision(capabilities, requested) == policy
