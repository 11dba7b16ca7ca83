"""Starting the servers under test on loopback, one at a time, each in its own process.

* `ours`: `python -m service api` with the given models, default settings (as many worker
  processes as cores) and a private state folder (optionally with settings overridden through
  PERCEPTRON_* variables, for the sweep); `ours-1`: the same in one process
  (`PERCEPTRON_WORKERS=1`), the scaling baseline;
* `bentoml`: `bench/bentoml_digit.py` under `bentoml serve`, from the bench's own environment
  (`.venv-bench`, `make bench-venv`): the BentoML peer, `/digit` only;
* `bare`: `bench.bare_app`, the HTTP-stack ceiling;
* `service-run`: `python -m service run`, the API with its training worker (the soak test).

Servers run with their working folder in a temporary directory, so a `.env` in the checkout
cannot steer them, and with their log in the run's output folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO

SERVER_KINDS = ("ours", "ours-1", "bare", "bentoml")
READY_TIMEOUT_S = 300
BENCH_VENV = REPO / ".venv-bench"
ENDPOINTS = {"bentoml": ("/digit",)}
"""Servers that answer only some endpoints (the others answer every payload's)."""
OURS = ("ours", "ours-1")


@dataclass(frozen=True)
class ServerSpec:
    kind: str
    models_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment (PERCEPTRON_* settings) for `ours`."""
    ready_request: tuple[str, bytes, str] | None = None
    """(path, body, content type) of a request that must answer 200 before the server counts
    as ready, beyond /readyz (BentoML's /readyz answers before its model has loaded)."""

    def serves(self, endpoint: str) -> bool:
        return endpoint in ENDPOINTS.get(self.kind, (endpoint,))


@dataclass
class RunningServer:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(spec: ServerSpec, port: int) -> list[str]:
    python = sys.executable
    if spec.kind in OURS:
        return [python, "-m", "service", "api"]
    if spec.kind == "bentoml":
        bentoml = BENCH_VENV / "bin" / "bentoml"
        if not bentoml.exists():
            raise RuntimeError(f"{bentoml} is missing: run `make bench-venv` first")
        return [
            str(bentoml), "serve", "bentoml_digit:DigitApi", "--working-dir", str(REPO / "bench"),
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
    if spec.kind == "service-run":
        return [python, "-m", "service", "run"]
    if spec.kind == "bare":
        return [python, "-m", "bench.bare_app", "--port", str(port)]
    raise ValueError(f"unknown server kind {spec.kind!r}; one of {', '.join(SERVER_KINDS)}")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process of the harness: this checkout importable, and
    TensorFlow's start-up chatter off."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _environment(spec: ServerSpec, port: int, state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in child_env().items() if not k.startswith("PERCEPTRON_")}
    env.update(
        PERCEPTRON_HOST="127.0.0.1",
        PERCEPTRON_PORT=str(port),
        PERCEPTRON_MODELS_DIR=str(spec.models_dir.resolve()),
        # Exactly the versions of the folder measured: no bundled version is seeded into it.
        PERCEPTRON_BUNDLED_MODELS_DIR="",
        PERCEPTRON_STATE_DIR=str(state_dir),
        PERCEPTRON_CACHE_DIR=str(state_dir / "cache"),
    )
    if spec.kind == "ours-1":
        env["PERCEPTRON_WORKERS"] = "1"
    if spec.kind == "bentoml":
        env["BENCH_DIGIT_MODEL"] = str(newest_version(spec.models_dir / "digit"))
        env["BENTOML_HOME"] = str(state_dir / "bentoml")
        env["BENTOML_DO_NOT_TRACK"] = "true"
    env.update(spec.env)
    return env


def newest_version(model_dir: Path) -> Path:
    """The highest integer version folder of a model (what our service serves unpinned)."""
    versions = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()]
    return model_dir / str(max(versions))


def expected_workers(spec: ServerSpec) -> int:
    """How many processes of ours must have loaded their models before it is measured."""
    if spec.kind == "ours-1":
        return 1
    if spec.kind not in ("ours", "service-run"):
        return 0
    given = spec.env.get("PERCEPTRON_WORKERS")
    return int(given) if given else len(os.sched_getaffinity(0))


def _loaded_workers(server: RunningServer) -> int:
    """Processes that report a served digit version in /metrics (one series per process)."""
    with urllib.request.urlopen(server.url("/metrics"), timeout=5) as response:
        text = response.read().decode()
    return len(re.findall(r'perceptron_model_served_version\{model="digit",pid="\d+"\}', text))


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.spec.kind} exited with {server.process.returncode} before it was ready; "
                f"its log:\n{server.log_path.read_text(errors='replace')[-3000:]}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            if _answers(server):
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.spec.kind} was not ready after {READY_TIMEOUT_S}s")


def _answers(server: RunningServer) -> bool:
    """Ready: /readyz says so, every worker process of ours has loaded its models, and the
    ready request (when the spec names one) answers 200."""
    with urllib.request.urlopen(server.url("/readyz"), timeout=2) as response:
        if response.status != 200:
            return False
    workers = expected_workers(server.spec)
    if workers > 1 and _loaded_workers(server) < workers:
        return False
    if server.spec.ready_request is not None:
        path, body, content_type = server.spec.ready_request
        request = urllib.request.Request(
            server.url(path), data=body, headers={"Content-Type": content_type}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(response.status == 200)
    return True


@contextlib.contextmanager
def running(spec: ServerSpec, out: Path) -> Iterator[RunningServer]:
    """Starts the server, waits until /readyz answers 200, and stops it (SIGINT) afterwards."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=f"bench-{spec.kind}-") as folder:
        state_dir = Path(folder)
        log_path = out / f"server-{spec.kind}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _command(spec, port),
                cwd=state_dir,
                env=_environment(spec, port, state_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            server = RunningServer(spec, process, port, log_path)
            try:
                _wait_ready(server)
                yield server
            finally:
                _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
