"""Tensors in JSON, as both tensor protocols send them: nested lists of numbers read as float32
arrays, with 400s that say where the nesting or a number is wrong."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from service.errors import BadRequest

JSON_OVERHEAD_VALUES = 256
"""Values a JSON request body may hold beyond its payload of numbers: field names, shapes,
options (see `service.http.bodies.json_body`)."""

FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_array(value: Any, where: str) -> np.ndarray:
    """A JSON number or rectangular nested list of numbers as a float32 array. 400 naming
    `where` when the nesting is ragged, an item is not a number (booleans are not), or a
    number is not finite within float32's range."""
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    items = [value]
    for depth, size in enumerate(shape):
        level: list[Any] = []
        for item in items:
            if not isinstance(item, list) or len(item) != size:
                raise BadRequest(
                    f"{where}: the lists are ragged at depth {depth + 1} (expected every list "
                    f"there to hold {size} items, as the first does)"
                )
            level.extend(item)
        items = level
    for item in items:
        if type(item) is not float and type(item) is not int:
            raise BadRequest(f"{where}: {_brief(item)} is not a number")
    try:
        array = np.array(items, dtype=np.float64)
    except OverflowError:
        raise BadRequest(f"{where}: a number is too large for float32") from None
    if not bool(np.all(np.abs(array) <= FLOAT32_MAX)):  # false for NaN and infinities too
        raise BadRequest(f"{where}: numbers must be finite and within float32's range (±3.4e38)")
    return array.astype(np.float32).reshape(shape)


def _brief(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
