"""A LiteRT copy of a SavedModel as a runner: LiteRT's interpreter with its XNNPACK kernels.

An interpreter holds its tensors between calls, so one call runs at a time (a lock; calls are
serialised by the batcher anyway). A batch of another size resizes the input tensors, which
costs less than a model call (bench/RESULTS.md), so no batch sizes are fixed in advance.
"""

from __future__ import annotations

import threading

import numpy as np

from service.runtimes import Tensors
from training.signatures import SERVING_SIGNATURE_KEY


class LiteRTRunner:
    """Runs the serving signature of a LiteRT flat buffer on `threads` threads."""

    runtime = "litert"

    def __init__(self, flatbuffer: bytes, *, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
        self._signature = self._interpreter.get_signature_runner(SERVING_SIGNATURE_KEY)
        self.input_types = {
            name: np.dtype(detail["dtype"])
            for name, detail in self._signature.get_input_details().items()
        }
        self.output_names = tuple(self._signature.get_output_details())
        self._lock = threading.Lock()

    def __call__(self, inputs: Tensors) -> Tensors:
        arrays = {
            name: np.ascontiguousarray(inputs[name], dtype=dtype)
            for name, dtype in self.input_types.items()
        }
        with self._lock:
            outputs: Tensors = self._signature(**arrays)  # copies: safe after the lock
        return outputs
