"""Benchmarks: `python -m bench COMMAND` (the commands are the modules of `bench.commands`;
figures in bench/RESULTS.md).

The harness never imports TensorFlow itself: every server and every in-process model
measurement runs in its own child process, so the harness costs nothing while they are measured.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""The checkout being measured: its service, training code and bundled models."""
