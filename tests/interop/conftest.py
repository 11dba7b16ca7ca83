"""Real HTTP servers for the protocol clients (tritonclient, kserve, httpx): the app under
uvicorn on a free loopback port, in a background thread, on private copies of the tiny models.

Servers are shared by the whole package (each loads TensorFlow models): `server` serves both
models; `digit_only_server` has no mpg model, so it is live but not ready.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from service.app import create_app
from service.cli import uvicorn_options
from service.settings import Settings
from training.cars import CAR_FEATURES, FEATURE_NAMES

START_TIMEOUT_S = 120


@dataclass(frozen=True)
class LiveServer:
    host_port: str
    """`127.0.0.1:PORT`, as tritonclient takes it."""
    models_dir: Path
    app: Any
    """The app the server runs, in this process: for tests that observe its state."""

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"


@contextmanager
def serve(models_dir: Path, state_dir: Path, **overrides: Any) -> Iterator[LiveServer]:
    """Runs the app under uvicorn until the block ends; the socket is bound before the server
    starts, so the port is known and never raced for. `overrides` are Settings fields."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        models_dir=models_dir,
        state_dir=state_dir,
        cache_dir=state_dir / "cache",
        poll_interval_s=1.0,
        log_json=False,
        log_level="WARNING",
        **overrides,
    )
    # The service's own uvicorn options (keep-alive above all: with uvicorn's 5 s default a
    # loaded server can close an idle connection just as a client reuses it).
    app = create_app(settings)
    options = {**uvicorn_options(settings, app), "log_level": "warning"}
    config = uvicorn.Config(app, lifespan="on", ws="none", **options)
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="interop-uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start (see the log above)")
        time.sleep(0.05)
    try:
        yield LiveServer(f"{host}:{port}", models_dir, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def server(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Both tiny models, version 1 of each, served."""
    root = tmp_path_factory.mktemp("interop")
    shutil.copytree(tiny_models, root / "models")
    with serve(root / "models", root / "var") as live:
        yield live


@pytest.fixture(scope="session")
def digit_only_server(
    tiny_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Serves digit; mpg has no version on disk, so the server is not ready."""
    root = tmp_path_factory.mktemp("interop-digit-only")
    shutil.copytree(tiny_models / "digit", root / "models" / "digit")
    with serve(root / "models", root / "var") as live:
        yield live


Tensors = dict[str, np.ndarray]


@pytest.fixture(scope="session")
def direct(tiny_models: Path) -> Callable[[str, Tensors], Tensors]:
    """The ground truth: a tiny model's serving signature called in this process, no HTTP."""
    import tensorflow as tf

    from training.signatures import SERVING_SIGNATURE_KEY

    loaded = {name: tf.saved_model.load(str(tiny_models / name / "1")) for name in ("digit", "mpg")}

    def call(name: str, inputs: Tensors) -> Tensors:
        function = loaded[name].signatures[SERVING_SIGNATURE_KEY]
        outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    return call


@pytest.fixture(scope="session")
def digit_images(mnist) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Eight MNIST test images as the model takes them: float32 [8, 28, 28] in 0..1."""
    images: np.ndarray = mnist.x_test[:8].astype(np.float32) / 255.0
    return images


@pytest.fixture(scope="session")
def cars(auto_mpg) -> list[dict[str, int | float]]:  # type: ignore[no-untyped-def]
    """Twelve cars of the data set, each feature as /mpg and the raw tensors both take it."""
    rows = auto_mpg.head(12)
    return [
        {f.name: int(row[f.name]) if f.integer else float(row[f.name]) for f in CAR_FEATURES}
        for _, row in rows.iterrows()
    ]


def car_columns(cars: list[dict[str, int | float]]) -> Tensors:
    """The cars as the mpg model's inputs: one float32 [n] array per feature."""
    return {name: np.array([car[name] for car in cars], dtype=np.float32) for name in FEATURE_NAMES}
