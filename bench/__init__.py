"""Benchmarks: `python -m bench serve|memory|sweep|train|soak` (see bench/RESULTS.md).

The harness never imports TensorFlow itself: every server and every in-process model
measurement runs in its own subprocess, so the harness costs nothing while they are measured.
"""
