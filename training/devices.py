"""Which device trains, on whichever Keras backend runs: every visible GPU (mirrored when
TensorFlow sees several), else the CPU; and the compute precision that suits it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import keras

log = logging.getLogger(__name__)

BFLOAT16_COMPUTE_CAPABILITY = 8.0
"""NVIDIA GPUs from Ampere (8.0) on compute in bfloat16 natively; older ones get float16."""


@dataclass(frozen=True)
class TrainingDevice:
    description: str
    """'CPU' or the GPU names, e.g. 'GPU: NVIDIA H100 80GB HBM3'."""
    gpu: bool
    precision: str = "float32"
    """The Keras dtype policy: float32, mixed_bfloat16 or mixed_float16."""
    _scope: Callable[[], AbstractContextManager[object]] = field(
        default=contextlib.nullcontext, repr=False
    )

    @property
    def mixed_precision(self) -> bool:
        return self.precision != "float32"

    def scope(self) -> AbstractContextManager[object]:
        """Where models and optimisers are built (TensorFlow's distribution strategy)."""
        return self._scope()


def configure_device(*, mixed_precision: bool | None) -> TrainingDevice:
    """Sets up the visible accelerators for one training run and describes them.

    Half precision (float32 variables) is used on a GPU unless `mixed_precision` is False, and
    never on a CPU, where it is slower than float32: a request for it there is ignored and the
    metadata says so.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        names, capabilities, scope = _tensorflow_gpus()
    elif backend == "jax":
        names, capabilities, scope = _jax_gpus()
    elif backend == "torch":
        names, capabilities, scope = _torch_gpus()
    else:
        names, capabilities, scope = [], [], contextlib.nullcontext
    precision = choose_precision(capabilities if names else None, mixed_precision)
    if mixed_precision and not names:
        log.warning("mixed precision requested but no GPU is visible; training in float32")
    keras.mixed_precision.set_global_policy(precision)
    if not names:
        return TrainingDevice("CPU", gpu=False)
    return TrainingDevice(f"GPU: {', '.join(names)}", gpu=True, precision=precision, _scope=scope)


def choose_precision(gpu_capabilities: list[float | None] | None, requested: bool | None) -> str:
    """The Keras dtype policy for GPUs of these compute capabilities (None: no GPU; a None
    capability: unknown, taken as recent) when mixed precision is `requested` (None: auto)."""
    if not gpu_capabilities or requested is False:
        return "float32"
    native = all(c is None or c >= BFLOAT16_COMPUTE_CAPABILITY for c in gpu_capabilities)
    return "mixed_bfloat16" if native else "mixed_float16"


Found = tuple[list[str], list[float | None], Callable[[], AbstractContextManager[object]]]


def _tensorflow_gpus() -> Found:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Share the card with other processes (a serving replica, a second job). RuntimeError:
        # the device was already initialised in this process and the setting is fixed.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    details = [_tf_details(gpu) for gpu in gpus]
    names = [str(d.get("device_name", gpu.name)) for d, gpu in zip(details, gpus, strict=True)]
    capabilities = [_capability(d.get("compute_capability")) for d in details]
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    return names, capabilities, strategy.scope


def _tf_details(gpu: object) -> dict[str, object]:
    import tensorflow as tf

    try:
        return dict(tf.config.experimental.get_device_details(gpu))
    except (RuntimeError, ValueError):
        return {}


def _jax_gpus() -> Found:
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    capabilities = [_capability(getattr(d, "compute_capability", None)) for d in gpus]
    return [str(d.device_kind) for d in gpus], capabilities, contextlib.nullcontext


def _torch_gpus() -> Found:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = [torch.cuda.get_device_name(i) for i in range(count)]
    capabilities = [_capability(torch.cuda.get_device_capability(i)) for i in range(count)]
    return names, capabilities, contextlib.nullcontext


def _capability(value: object) -> float | None:
    """'8.6', (8, 6) or None (unknown: assumed recent)."""
    if isinstance(value, tuple) and len(value) == 2:
        return float(f"{value[0]}.{value[1]}")
    try:
        return float(str(value)) if value is not None else None
    except ValueError:
        return None
