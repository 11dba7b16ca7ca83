"""What a training job will cost, estimated before it is queued: the multiply-adds of its
model per sample (from the digit model's layer plan, or the MPG network's widths), times the
samples it trains on, its epochs and ensemble members, plus a fixed overhead per optimiser
step (what makes batch 1 slow whatever the model).

The estimate is expressed in seconds on the reference machine (2 CPU cores), from rates
measured there (bench/RESULTS.md, "Training time"): the default CNN's epoch (16-32 filters,
3.9 M multiply-adds an image: 35-110 s from a quiet to a loaded machine; estimated 64 s), the
32-64 CNN's of `--preset best` (15.2 M: 100-250 s; estimated 247 s) and the classic MLP's
(about 4-6 s; estimated 7 s). It is an order of magnitude, good enough to refuse a job that
would run for days.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.cars import FEATURE_NAMES, ORIGINS
from training.data import AUTO_MPG_ROWS
from training.digit_model import convolutions
from training.hyperparameters import DigitHyperparameters, MpgHyperparameters
from training.hyperparameters import TrainingHyperparameters as Hyperparameters
from training.signatures import IMAGE_SIZE, NUM_CLASSES

MNIST_TRAIN_ROWS = 60_000
MPG_TRAIN_SHARE = 0.8
"""The share of Auto MPG's rows that training sees (the rest is the test set)."""
MPG_FEATURE_WIDTH = len(FEATURE_NAMES) - 1 + len(ORIGINS)
"""Width of the encoded car vector: the numeric features and a one-hot origin."""
REFERENCE_MACS_PER_S = 1.0e10
"""Training multiply-adds per second on the reference machine (forward and backward)."""
REFERENCE_STEP_S = 0.002
"""Fixed cost of one optimiser step on the reference machine."""
TRAINING_FACTOR = 3
"""A training step costs about three forward passes (forward, and two for the gradients)."""


@dataclass(frozen=True)
class JobCost:
    samples_per_epoch: int
    steps: int
    macs_per_sample: int
    seconds: float
    """Estimated run time on the reference machine."""


def estimate_cost(model: str, hp: Hyperparameters) -> JobCost:
    if isinstance(hp, DigitHyperparameters):
        rows = min(MNIST_TRAIN_ROWS, hp.max_train_samples or MNIST_TRAIN_ROWS)
        samples = max(1, round(rows * (1 - hp.validation_split)))
        macs = _digit_macs(hp)
        members = 1
    elif isinstance(hp, MpgHyperparameters):
        rows = round(AUTO_MPG_ROWS * MPG_TRAIN_SHARE)
        rows = min(rows, hp.max_train_samples or rows)
        samples = max(1, round(rows * (1 - hp.validation_split)))
        macs = _dense_macs(MPG_FEATURE_WIDTH, [*hp.hidden_units, 1])
        members = hp.ensemble_size
    else:
        raise ValueError(f"no cost model for {model!r}")
    steps = members * hp.epochs * -(-samples // hp.batch_size)
    sample_steps = members * hp.epochs * samples
    seconds = (
        sample_steps * macs * TRAINING_FACTOR / REFERENCE_MACS_PER_S + steps * REFERENCE_STEP_S
    )
    return JobCost(samples, steps, macs, seconds)


def _dense_macs(width: int, units: list[int]) -> int:
    total = 0
    for out in units:
        total += width * out
        width = out
    return total


def _digit_macs(hp: DigitHyperparameters) -> int:
    """Multiply-adds of one forward pass, from the layer plan the model is built from (no
    model is built: a huge one would take its memory just to be priced)."""
    total = 0
    channels, side = 1, IMAGE_SIZE
    for conv in convolutions(hp):
        total += conv.kernel * conv.kernel * channels * conv.filters * conv.output_size**2
        channels, side = conv.filters, conv.output_size
    return total + _dense_macs(side * side * channels, [*hp.hidden_units, NUM_CLASSES])
