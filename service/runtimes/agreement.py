"""Whether a runtime's copy of a model computes what its SavedModel computes.

Both run the same probe batch, built from the serving signature's own inputs (so a version with
other or extra inputs and outputs is checked the same way), and every output must agree within
its tolerance; a classifier's rows must also pick the same class. Car features are probed
within the ranges the version was trained on, other inputs (images) with values in 0..1: dense
noise, sparse strokes and a blank row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.runtimes import Tensors
from training.cars import FEATURES_BY_NAME

PROBE_ROWS = 32
PROBE_SEED = 20261207
ABSOLUTE_TOLERANCES: dict[str, float] = {"probabilities": 1e-4, "mpg": 1e-3}
"""Largest difference allowed per output: a tenth of the six decimals /digit answers cannot
hide, and a thousandth of a mile per gallon (the answer shows hundredths)."""
RELATIVE_TOLERANCE = 1e-4
"""For any other output: the largest difference allowed, relative to the output's largest
magnitude (at least 1)."""
SPARSE_INK_SHARE = 0.15
"""Share of lit pixels in the probe's sparse rows, about an MNIST digit's."""


class Disagreement(Exception):
    """The copy's answers differ from the SavedModel's beyond a tolerance."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    """Without the batch dimension."""


def input_specs(signature: Any) -> list[InputSpec]:
    """The named inputs of a loaded SavedModel signature (a `tf.function`), batch dimension
    dropped (another dimension of unknown size is probed at 1)."""
    specs = signature.structured_input_signature[1]
    return [
        InputSpec(name, tuple(1 if d is None else int(d) for d in spec.shape[1:]))
        for name, spec in specs.items()
    ]


def probe_inputs(specs: list[InputSpec], metadata: Mapping[str, Any]) -> Tensors:
    """The probe batch: PROBE_ROWS rows for every input, the same for every call."""
    rng = np.random.default_rng(PROBE_SEED)
    ranges = metadata.get("feature_ranges") or {}
    return {spec.name: _probe(spec, ranges.get(spec.name), rng) for spec in specs}


def _probe(spec: InputSpec, trained: Any, rng: np.random.Generator) -> np.ndarray:
    shape = (PROBE_ROWS, *spec.shape)
    feature = FEATURES_BY_NAME.get(spec.name)
    if feature is not None:
        low, high = _bounds(trained) or (feature.minimum, feature.maximum)
        if feature.integer:  # a rounded input (origin) must not sit on a rounding edge
            return rng.integers(round(low), round(high), endpoint=True, size=shape).astype(
                np.float32
            )
        return rng.uniform(low, high, size=shape).astype(np.float32)
    values = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
    half = PROBE_ROWS // 2
    values[half:] *= rng.uniform(size=values[half:].shape) < SPARSE_INK_SHARE
    values[-1] = 0.0
    return values


def _bounds(trained: Any) -> tuple[float, float] | None:
    """A version's recorded training range `[low, high]`, or None when it records none."""
    if isinstance(trained, list | tuple) and len(trained) == 2:
        low, high = trained
        if isinstance(low, int | float) and isinstance(high, int | float) and low <= high:
            return float(low), float(high)
    return None


def compare(reference: Tensors, candidate: Tensors) -> dict[str, float]:
    """The largest difference per output; raises Disagreement when an output is missing, has
    another shape, differs beyond its tolerance, or (a classifier) picks another class where
    the SavedModel's choice is clear by more than the tolerance."""
    differences = {}
    for name, expected in reference.items():
        if name not in candidate:
            raise Disagreement(f"output {name!r} is missing")
        got = np.asarray(candidate[name])
        if got.shape != expected.shape:
            raise Disagreement(f"output {name!r} has shape {got.shape}, not {expected.shape}")
        finite = np.isfinite(expected)
        if not np.array_equal(finite, np.isfinite(got)):
            raise Disagreement(f"output {name!r} is not finite where the SavedModel's is")
        difference = float(np.max(np.abs(got - expected), where=finite, initial=0.0))
        scale = float(np.max(np.abs(expected), where=finite, initial=0.0))
        tolerance = ABSOLUTE_TOLERANCES.get(name, RELATIVE_TOLERANCE * max(1.0, scale))
        if difference > tolerance:
            raise Disagreement(
                f"output {name!r} differs by up to {difference:.3g} (tolerance {tolerance:.3g})"
            )
        if expected.ndim == 2 and expected.shape[1] >= 2:
            _same_classes(name, expected, got, tolerance)
        differences[name] = difference
    return differences


def _same_classes(name: str, expected: np.ndarray, got: np.ndarray, tolerance: float) -> None:
    top_two = np.sort(expected, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > tolerance
    differ = (expected.argmax(axis=1) != got.argmax(axis=1)) & clear
    if differ.any():
        raise Disagreement(f"output {name!r} picks another class in {int(differ.sum())} rows")


def check_agreement(
    expected: Tensors, candidate: Callable[[Tensors], Tensors], probes: Tensors
) -> dict[str, float]:
    """Runs the probe batch through the candidate, and its first row alone (a batch of
    another size), against the SavedModel's answers `expected`; returns the largest
    difference per output or raises Disagreement."""
    differences = compare(expected, candidate(probes))
    first = compare(
        {k: v[:1] for k, v in expected.items()}, candidate({k: v[:1] for k, v in probes.items()})
    )
    return {name: max(value, first[name]) for name, value in differences.items()}
