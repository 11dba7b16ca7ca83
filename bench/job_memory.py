"""One measurement of `python -m bench job_memory`, in its own process:
`python -m bench.job_memory RECIPE_JSON` prints the peak memory growth of two training steps.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any


def measure(recipe: dict[str, Any]) -> dict[str, Any]:
    """In this process: the peak memory growth of two training steps of `recipe`."""
    import numpy as np

    from training import components, digit_model
    from training.cost import estimate_memory
    from training.hyperparameters import DigitHyperparameters

    hp = DigitHyperparameters.model_validate(recipe)
    model = digit_model.build_digit_model(hp)
    model.compile(
        optimizer=components.optimizer(hp, 2),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    rng = np.random.default_rng(0)
    x = rng.random((2 * hp.batch_size, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 2 * hp.batch_size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.fit(x, y, batch_size=hp.batch_size, epochs=1, verbose=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    estimate = estimate_memory(hp)
    return {
        "recipe": recipe,
        "parameters": model.count_params(),
        "measured_mib": round((peak - before) / 1024, 1),
        "estimated_mib": round(estimate.step_bytes / 2**20, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))), flush=True)
