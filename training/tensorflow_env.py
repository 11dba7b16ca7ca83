"""What TensorFlow reads from the environment when it is imported, set by the commands first."""

from __future__ import annotations

import os

QUIET_CPP_LOG_LEVEL = "1"
"""TensorFlow's C++ log threshold: 1 hides its information lines (the oneDNN notice, the CPU
instructions it was built for), printed before any Python logging applies and of no use to
whoever starts the service or a training run; its warnings and errors still show."""


def quiet_tensorflow() -> None:
    """Hides TensorFlow's start-up information lines in this process and the processes it
    starts (they inherit the environment). An explicit TF_CPP_MIN_LOG_LEVEL wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_CPP_LOG_LEVEL)
