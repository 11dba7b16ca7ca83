"""`python -m service run`: the API and its worker start together and stop together."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def start(models_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "PERCEPTRON_MODELS_DIR": str(models_dir),
        "PERCEPTRON_STATE_DIR": str(tmp_path / "var"),
        "PERCEPTRON_PORT": str(port),
        "PERCEPTRON_LOG_JSON": "false",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "run"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        time.sleep(0.5)  # the polling interval of a wait with a deadline
    else:
        process.kill()
        process.wait(timeout=30)
        raise AssertionError(f"not ready within 180 s:\n{log.read_text()[-3000:]}")
    found = re.search(r"training worker started \(pid (\d+)\)", log.read_text())
    assert found, log.read_text()
    return process, int(found.group(1)), log


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_sigterm_stops_the_api_and_its_worker(models_dir, tmp_path) -> None:
    process, worker, log = start(models_dir, tmp_path)
    assert alive(worker)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert wait_gone(worker), f"worker {worker} outlived its API\n{log.read_text()[-2000:]}"


def test_the_worker_dies_with_a_killed_api(models_dir, tmp_path) -> None:
    process, worker, _ = start(models_dir, tmp_path)
    process.kill()
    process.wait(timeout=30)
    assert wait_gone(worker), f"worker {worker} outlived its killed API"
