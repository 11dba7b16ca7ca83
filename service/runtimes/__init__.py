"""How a loaded model version computes its answers.

Every version is loaded as its SavedModel, the contract. It then serves with one of two
runtimes: LiteRT, running a copy derived from the SavedModel (`training.litert`) that agrees
with it on a probe batch, or TensorFlow, calling the SavedModel's serving signature. The
`model_runtime` setting chooses (`selection`); whichever serves is a `Runner`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

Tensors = dict[str, np.ndarray]
RUNTIMES = ("litert", "tensorflow")


class Runner(Protocol):
    """One synchronous model call on named NumPy arrays sharing a leading row dimension;
    returns every output of the serving signature by name. Safe to call from any thread."""

    runtime: str

    def __call__(self, inputs: Tensors) -> Tensors: ...
