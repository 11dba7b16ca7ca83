"""What the figures were measured on: CPU model, cores, memory, load, software versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import REPO

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "fastapi", "uvicorn", "pillow", "numpy")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


COMPETING = r"training (digit|mpg)|pytest"
"""Work that would share the cores with a benchmark: training runs and test suites."""


def competing_work() -> list[str]:
    """Command lines of training runs and test suites that are not ours (they skew figures)."""
    try:
        output = subprocess.run(
            ["pgrep", "-af", COMPETING], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    own = {str(os.getpid()), str(os.getppid())}
    return [line for line in output.splitlines() if line and line.split()[0] not in own]


def code_version() -> str:
    """The commit measured, marked when the working tree differs from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, check=False, timeout=10,
                cwd=REPO,
            ).stdout.strip()  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    # bench/ itself may be uncommitted while it is written; what matters is the service code.
    dirty = git("status", "--porcelain", "--", "service", "training")
    return commit + (" with uncommitted changes to service/ or training/" if dirty else "")


def describe() -> dict[str, Any]:
    return {
        "code": code_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(_memory_gib(), 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": _versions(),
        "gpu": _gpu(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _gpu() -> str | None:
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return output or None


def summary_line(machine: dict[str, Any]) -> str:
    gpu = machine.get("gpu") or "no GPU"
    return (
        f"commit {machine.get('code', 'unknown')}; "
        f"{machine['cpu']}, {machine['usable_cores']} cores (nproc), "
        f"{machine['memory_gib']} GiB, {gpu}; Linux {machine['kernel']}, Python "
        f"{machine['python']}, " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    )
