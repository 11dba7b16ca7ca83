"""`python -m service <role>` as a real process on a free port, for the tests that need the real
server (signals, PID namespaces, several replicas, a proxy in front): start it, wait until it
answers, and stop it the way a container runtime does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from tests.conftest import REPO

START_TIMEOUT_S = 240
"""Importing TensorFlow and loading the models, on a 2-core machine other tests share."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(state: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of one service process: its own state folder and port, plain-text logs,
    the bundled models unless `PERCEPTRON_MODELS_DIR` is given; `settings` are further
    `PERCEPTRON_*` variables (without the prefix, lower case)."""
    env = {
        **os.environ,
        "PERCEPTRON_MODELS_DIR": str(REPO / "models"),
        "PERCEPTRON_STATE_DIR": str(state / "var"),
        "PERCEPTRON_CACHE_DIR": str(state / "cache"),
        "PERCEPTRON_PORT": str(port),
        "PERCEPTRON_LOG_JSON": "false",
        "PERCEPTRON_POLL_INTERVAL_S": "1",
        "TMPDIR": str(state),
    }
    env.update({f"PERCEPTRON_{name.upper()}": value for name, value in settings.items()})
    return env


class LiveService:
    """One `python -m service <role>` process (under `prefix`, e.g. `unshare ...`), its output
    in `log`."""

    def __init__(
        self,
        role: str,
        env: dict[str, str],
        log: Path,
        *,
        prefix: Sequence[str] = (),
    ) -> None:
        self.role = role
        self.port = int(env.get("PERCEPTRON_PORT", "8000"))
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "service", role],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        """Polls `condition` (transport errors count as not yet) until it holds; fails with the
        process's output if the process exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.role} exited with {self.process.returncode} before {what}:\n"
                    + self.output()
                )
            time.sleep(0.25)  # the polling interval of a wait with a deadline
        raise AssertionError(f"{what} not within {timeout:g} s:\n{self.output()}")

    def wait_ready(self, host: str | None = None, timeout: float = START_TIMEOUT_S) -> None:
        """Until GET /readyz answers 200 (sent with `host` as Host when given)."""
        headers = {"Host": host} if host else {}
        self.wait_until(
            lambda: httpx.get(self.url("/readyz"), headers=headers, timeout=5).status_code == 200,
            f"{self.role} ready on port {self.port}",
            timeout,
        )

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT_S) -> None:
        self.wait_until(lambda: text in self.output(tail=1_000_000), repr(text), timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Sends `sig` and waits for the exit; kills it past `timeout`. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
