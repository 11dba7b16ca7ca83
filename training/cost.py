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

Memory is estimated the same way, from the layer plan: the parameters with their gradients and
optimiser state, and the values every layer outputs for each sample of a batch (kept for the
backward pass). A job of 256-filter convolutions at batch 4,096 would need about 30 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.cars import FEATURE_NAMES, ORIGINS
from training.data import AUTO_MPG_ROWS
from training.digit_model import GATE_UNITS, convolutions
from training.hyperparameters import DigitArchitecture, DigitHyperparameters, MpgHyperparameters
from training.hyperparameters import TrainingHyperparameters as Hyperparameters
from training.not_digit_gate import NEGATIVES_SHARE
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
    if isinstance(hp, DigitHyperparameters) and hp.not_digit_gate:
        # One forward pass over the digits and the gate's negatives; the head's own training
        # on those features is small beside it.
        seconds += samples * (1 + NEGATIVES_SHARE) * macs / REFERENCE_MACS_PER_S
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


BYTES_PER_PARAMETER = 16
"""A trainable float32 weight, its gradient and two optimiser slots (Adam's moments)."""
BYTES_PER_ACTIVATION = 6
"""Per value a layer outputs for one sample in a training step: kept for the backward pass,
with its gradient, less what TensorFlow frees as it goes. With STEP_OVERHEAD_BYTES, fitted to
the peaks `python -m bench.job_memory` measured (bench/RESULTS.md, "Training memory"): within
-15%..+40% for CNNs of 116,000 to 8 million parameters at batches of 8 to 512 and a six-layer
MLP at batch 2,048 (the classic MLP's 40 MiB step is overestimated at 108 MiB)."""
STEP_OVERHEAD_BYTES = 100 * 2**20
"""The training step's graph and working buffers, whatever the model."""


@dataclass(frozen=True)
class JobMemory:
    parameters: int
    activations_per_sample: int
    """Values the layers output for one sample, every one of them kept for the backward pass."""
    step_bytes: int
    """What training adds to the worker's memory at its peak: the parameters with their
    gradients and optimiser state, the activations of a whole batch, and the step's own
    overhead."""


def estimate_memory(hp: Hyperparameters) -> JobMemory:
    """The memory a job's training steps take beyond the runtime and the data set (which every
    job pays alike), from the layer plan: no model is built."""
    if isinstance(hp, DigitHyperparameters):
        parameters, activations = _digit_shape(hp)
    elif isinstance(hp, MpgHyperparameters):
        units = [*hp.hidden_units, 1]
        parameters = _dense_macs(MPG_FEATURE_WIDTH, units) + sum(units)
        activations = MPG_FEATURE_WIDTH + 2 * sum(units)
    else:
        raise TypeError(f"no memory model for {type(hp).__name__}")
    step = (
        STEP_OVERHEAD_BYTES
        + parameters * BYTES_PER_PARAMETER
        + hp.batch_size * activations * BYTES_PER_ACTIVATION
    )
    return JobMemory(parameters, activations, step)


def _digit_shape(hp: DigitHyperparameters) -> tuple[int, int]:
    """(parameters, activation values per sample) of the digit model `hp` describes."""
    cnn = hp.architecture is DigitArchitecture.cnn
    parameters = 0
    activations = IMAGE_SIZE * IMAGE_SIZE * (2 if hp.augment else 1)
    channels, side = 1, IMAGE_SIZE
    for conv in convolutions(hp):
        # Convolution (no bias), batch normalisation (4 values a filter) and activation, and
        # dropout after each stage.
        parameters += conv.kernel * conv.kernel * channels * conv.filters + 4 * conv.filters
        outputs = conv.output_size * conv.output_size * conv.filters
        activations += outputs * (4 if conv.last_of_stage and hp.dropout else 3)
        channels, side = conv.filters, conv.output_size
    width = side * side * channels
    # The not-a-digit gate's head reads each convolution pooled two ways, the last feature map
    # and the hidden layers; it is trained apart, after the classifier's steps.
    gate_width = 2 * sum(conv.filters for conv in convolutions(hp)) + width + sum(hp.hidden_units)
    for units in hp.hidden_units:
        parameters += width * units + units + (4 * units if cnn else 0)
        activations += units * ((3 if cnn else 2) + (1 if hp.dropout else 0))
        width = units
    parameters += width * NUM_CLASSES + NUM_CLASSES
    if hp.not_digit_gate:
        parameters += gate_width * GATE_UNITS + GATE_UNITS + GATE_UNITS + 1
    return parameters, activations + 2 * NUM_CLASSES
