"""The LiteRT copy of a SavedModel: the same serving signature as a LiteRT flat buffer, which
the service runs with LiteRT's interpreter at a fraction of TensorFlow's cost per call
(bench/RESULTS.md, "A compiled runtime for serving").

The SavedModel stays the artifact and the contract; this copy is derived from it. Export writes
it into the version folder beside the SavedModel (`model.tflite`); the service converts
versions that lack one when it loads them, and checks every copy against the SavedModel before
serving it. Only LiteRT's built-in operators are allowed, so a model that needs TensorFlow's
own kernels fails to convert here and is served with TensorFlow.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import Path

from training.signatures import SERVING_SIGNATURE_KEY

log = logging.getLogger(__name__)

LITERT_FILE = "model.tflite"
"""The LiteRT copy's name inside a version folder (TensorFlow Serving ignores it)."""


def convert_to_litert(saved_model: Path) -> bytes:
    """The serving signature of the SavedModel in `saved_model` as a LiteRT flat buffer, in
    float32 with built-in operators only; its inputs and outputs keep the signature's names.
    Raises whatever the converter raises for a model it cannot convert."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=[SERVING_SIGNATURE_KEY]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer: bytes = converter.convert()
    return flatbuffer


def describe_conversion_error(exc: BaseException) -> str:
    """The converter's refusal in one line: the TensorFlow operators LiteRT lacks when that is
    the reason (the converter's own message is pages of MLIR), else its first line."""
    text = str(exc)
    missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
    if missing:
        return f"LiteRT has no built-in operator for {', '.join(missing)}"
    first = text.strip().splitlines()[0][:400] if text.strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def write_file_atomically(path: Path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file renamed into place, so a reader sees the
    whole file or none."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_litert_copy(folder: Path) -> bool:
    """Writes the LiteRT copy of the SavedModel in `folder` beside it; returns whether it could.
    A model the converter refuses is still a valid version: it is logged, and the service
    serves it with TensorFlow."""
    try:
        flatbuffer = convert_to_litert(folder)
    except Exception as exc:  # any converter failure leaves a SavedModel-only version
        log.warning(
            "no LiteRT copy for %s (%s): it will be served with TensorFlow",
            folder,
            describe_conversion_error(exc),
        )
        return False
    write_file_atomically(folder / LITERT_FILE, flatbuffer)
    return True
