"""Which device trains: every visible GPU (mirrored when there are several), else the CPU."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingDevice:
    description: str
    """'CPU' or the GPU names, e.g. 'GPU: NVIDIA H100 80GB HBM3'."""
    strategy: tf.distribute.Strategy
    mixed_precision: bool


def configure_device(*, mixed_precision: bool) -> TrainingDevice:
    """Sets up the visible accelerators for one training run and describes them.

    Mixed precision (float16 compute, float32 variables) is applied only on a GPU: on a CPU it
    is slower than float32, so the request is ignored and the metadata says so.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Share the card with other processes (a serving replica, a second job). RuntimeError:
        # the device was already initialised in this process and the setting is fixed.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    use_mixed = mixed_precision and bool(gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    if mixed_precision and not gpus:
        log.warning("mixed precision requested but no GPU is visible; training in float32")
    if not gpus:
        return TrainingDevice("CPU", tf.distribute.get_strategy(), False)
    names = [_gpu_name(gpu) for gpu in gpus]
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    return TrainingDevice(f"GPU: {', '.join(names)}", strategy, use_mixed)


def _gpu_name(gpu: tf.config.PhysicalDevice) -> str:
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except (RuntimeError, ValueError):
        details = {}
    return str(details.get("device_name", gpu.name))
