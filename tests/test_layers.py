"""The structure of service/ holds: its layers (entry points, app, routes, HTTP edge and use
cases, schemas, services, stores, database, foundation, vision, errors) import only downwards,
the picture-to-tensor package is used through `service.vision` alone, and training never imports
the service. The contracts are in pyproject.toml under [tool.importlinter]."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_imports_follow_the_layers() -> None:
    # A process of its own: the linter prints through rich, which does not mix with pytest's
    # capture of the test session's streams.
    run = subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache", "--no-logo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout
