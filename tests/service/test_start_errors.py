"""What a person sees when the service cannot start: one line naming what to set."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _start(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    environment.update(PYTHONPATH=str(REPO), PERCEPTRON_STATE_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=tmp_path,  # no .env from the checkout
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("argv", [("service", "api"), ("service", "worker"), ("service", "run")])
@pytest.mark.parametrize("token", [None, "change-me", "short"])
def test_production_without_a_real_token_says_so_in_one_line(
    tmp_path: Path, argv: tuple[str, ...], token: str | None
) -> None:
    env = {"PERCEPTRON_ENVIRONMENT": "production"}
    if token is not None:
        env["PERCEPTRON_ADMIN_TOKEN"] = token
    result = _start(tmp_path, *argv, **env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot start: PERCEPTRON_ADMIN_TOKEN must be set to a random secret" in lines[0]


@pytest.mark.parametrize("redis_url", ["redis://redis:6379/0", "redis://:change-me@redis:6379/0"])
def test_production_refuses_a_redis_queue_without_a_real_password(
    tmp_path: Path, redis_url: str
) -> None:
    result = _start(
        tmp_path,
        "service",
        "api",
        PERCEPTRON_ENVIRONMENT="production",
        PERCEPTRON_ADMIN_TOKEN="a-real-secret-of-enough-length",
        PERCEPTRON_REDIS_URL=redis_url,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "PERCEPTRON_REDIS_URL must carry a real password in production" in result.stderr


def test_training_names_a_bad_setting_of_its_own_in_one_line(tmp_path: Path) -> None:
    """Training reads only the training settings: the service's (a production token) are not
    its business, a bad value of its own stops it before any work."""
    result = _start(tmp_path, "training", "mpg", PERCEPTRON_DOWNLOAD_DATA="maybe")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: cannot start: PERCEPTRON_DOWNLOAD_DATA: ")
    assert "Traceback" not in result.stderr


def test_a_bad_value_names_its_variable(tmp_path: Path) -> None:
    result = _start(tmp_path, "service", "api", PERCEPTRON_PORT="99999")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "python -m service: cannot start: PERCEPTRON_PORT: "
        "Input should be less than or equal to 65535"
    )


@pytest.mark.parametrize("command", ["api", "run"])
def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path, command: str) -> None:
    """Another program holds the port: one line, no traceback, nothing started or written (the
    port is opened before the worker, TensorFlow or the models)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _start(tmp_path, "service", command, PERCEPTRON_PORT=str(port))
    assert result.returncode == 2
    assert result.stderr == (
        f"python -m service: cannot start: port {port} is in use (another program listens on "
        f"127.0.0.1:{port}); set PERCEPTRON_PORT to a free port, e.g. "
        f"PERCEPTRON_PORT={port + 1} make run\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "var").exists()


def test_a_host_that_is_not_this_machine_s_names_its_setting(tmp_path: Path) -> None:
    result = _start(tmp_path, "service", "api", PERCEPTRON_HOST="192.0.2.1", PERCEPTRON_PORT="8799")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("python -m service: cannot start: cannot listen on 192.0.2.1:8799 (")
    assert line.endswith(
        "set PERCEPTRON_HOST to an address of this machine: 127.0.0.1 for "
        "this machine only, 0.0.0.0 for every network"
    )


def test_an_unwritable_models_folder_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the models folder should be")
    result = _start(
        tmp_path,
        "service",
        "worker",
        PERCEPTRON_MODELS_DIR=str(blocker / "models"),
        PERCEPTRON_BUNDLED_MODELS_DIR=str(REPO / "models"),
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"python -m service: cannot start: cannot copy the bundled models into {blocker / 'models'}"
    )
    assert line.endswith(
        "set PERCEPTRON_MODELS_DIR (or PERCEPTRON_STATE_DIR) to a folder this user can write"
    )
