"""The container files agree with the code: every setting they name exists, the ports match,
the commands and health checks they run exist, the volumes sit where the settings point."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.cli import healthcheck
from service.settings import PLACEHOLDER_TOKENS, Settings
from service.settings_doc import accepted_env_names
from tests.containers.container_files import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    MAKEFILE,
    PERCEPTRON_SERVICES,
    REPO,
    SETTING_NAME,
    compose,
    compose_strings,
    compose_variables,
    dockerfile,
    env_example_keys,
    final_stage,
    image_env,
    interpolate,
    python_module_commands,
)

CONTAINER_DEFAULTS = {
    "PERCEPTRON_REDIS_URL": "redis://:change-me@redis:6379/0",
    "PERCEPTRON_TRUSTED_PROXIES": "172.31.255.2",
    "PERCEPTRON_MAX_CONNECTIONS_PER_CLIENT": "1000",
}
"""Compose values that differ from the Settings defaults on purpose, as they read with no .env
(the Redis URL is built from REDIS_PASSWORD and REDIS_ADDRESS; the trusted proxy is the
production proxy's address on the edge network, and every connection comes from it or Docker's
gateway, so the per-address connection cap is the total one: tests/containers/test_proxy.py)."""
VOLUME_PATH_SETTINGS = ("PERCEPTRON_MODELS_DIR", "PERCEPTRON_STATE_DIR", "PERCEPTRON_CACHE_DIR")


def unknown_setting_names(text: str) -> set[str]:
    return set(SETTING_NAME.findall(text)) - accepted_env_names()


@pytest.mark.parametrize("path", [DOCKERFILE, COMPOSE_FILE, ENV_EXAMPLE], ids=lambda p: p.name)
def test_every_setting_named_exists(path: Path) -> None:
    assert not unknown_setting_names(path.read_text(encoding="utf-8"))


def test_a_misspelt_setting_is_caught() -> None:
    assert unknown_setting_names("ENV PERCEPTRON_MODEL_DIR=/x DATA_DIR=/d") == {
        "PERCEPTRON_MODEL_DIR"
    }


def test_ports_agree() -> None:
    port = str(Settings.model_fields["port"].default)
    exposed = [i.arguments for i in final_stage() if i.keyword == "EXPOSE"]
    assert exposed == [port]
    assert image_env()["PERCEPTRON_PORT"] == port
    assert image_env()["PERCEPTRON_HOST"] == "0.0.0.0", "127.0.0.1 is unreachable from outside"
    published = [interpolate(p) for p in compose()["services"]["api"]["ports"]]
    assert [p.rsplit(":", 1)[1] for p in published] == [port]


def _cli_commands() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    match = re.search(r"\{([a-z,-]+)\}", result.stdout)
    assert match, result.stdout
    return set(match[1].split(","))


def _container_commands() -> list[list[str]]:
    commands = [json.loads(i.arguments) for i in final_stage() if i.keyword == "CMD"]
    commands += [compose()["services"][name]["command"] for name in PERCEPTRON_SERVICES]
    return commands


def test_entry_points_exist_and_match_the_makefile() -> None:
    available = _cli_commands()
    makefile = MAKEFILE.read_text(encoding="utf-8")
    for command in _container_commands():
        subcommand = python_module_commands(command)
        assert len(subcommand) == 1 and subcommand[0] in available, command
        # `make api` / `make worker` run the same command in the development venv.
        recipe = f"\n{subcommand[0]}: develop\n\t$(BIN)/python -m service {subcommand[0]}\n"
        assert recipe in makefile, f"Makefile target {subcommand[0]} runs something else"
    assert image_env()["PATH"].startswith("/opt/venv/bin:"), "`python` must be the venv's"


def test_make_install_builds_the_venv_the_image_copies() -> None:
    """Dry-runs the Dockerfile's own `make install` line against the Makefile."""
    install = next(
        i.arguments for i in dockerfile() if i.keyword == "RUN" and i.arguments.startswith("make ")
    ).split("&&")[0]
    arguments = dict(word.split("=", 1) for word in shlex.split(install) if "=" in word)
    venv = arguments["VENV"]
    copied = next(i.arguments for i in final_stage() if "--from=builder" in i.arguments)
    assert copied.split()[1:] == [venv, venv], "the runtime must copy the venv make built"
    for variant in ("cpu", "gpu"):
        command = shlex.split(install.replace("${VARIANT}", variant))
        result = subprocess.run(
            [command[0], "--dry-run", "--always-make", "-C", str(REPO), *command[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert f"{arguments['PYTHON']} -m venv {venv}" in result.stdout
        assert f"{venv}/bin/python -m pip install" in result.stdout
        assert f"--no-deps --require-hashes -r requirements/{variant}.lock" in result.stdout


def _healthcheck_argv() -> list[str]:
    healthcheck = next(i.arguments for i in final_stage() if i.keyword == "HEALTHCHECK")
    argv: list[str] = json.loads(healthcheck.partition("CMD ")[2])
    return argv


def test_healthcheck_is_the_role_aware_entry_point_and_probes_a_route() -> None:
    from service.app import create_app

    argv = _healthcheck_argv()
    assert argv == ["python", "-m", "service", "healthcheck"]
    assert "healthcheck" in _cli_commands()
    paths = create_app(Settings(_env_file=None)).openapi()["paths"]  # type: ignore[call-arg]
    assert "get" in paths[healthcheck.READINESS_PATH]


def _run_healthcheck(tmp_path: Path, roles: list[str], **env: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """The image's HEALTHCHECK command as Docker runs it, in a container whose processes of
    `roles` have started (they are this test process, which is alive)."""
    for role in roles:
        (tmp_path / f"perceptron-{role}.pid").write_text(str(os.getpid()))
    environment = {
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "PERCEPTRON_STATE_DIR": str(tmp_path / "state"),
        **env,
    }
    argv = _healthcheck_argv()
    return subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=tmp_path,  # outside the repository: a developer's .env cannot change the outcome
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def readiness_server() -> Iterator[tuple[int, dict[str, int]]]:
    """A stand-in for the API answering GET /readyz with whatever status the test sets."""
    answer = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["status"] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], answer
    server.shutdown()
    server.server_close()


def test_an_api_container_is_healthy_once_ready(
    readiness_server: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    port, answer = readiness_server
    for status, expected in ((200, 0), (503, 1)):
        answer["status"] = status
        run = _run_healthcheck(tmp_path, ["api"], PERCEPTRON_PORT=str(port))
        assert run.returncode == expected, (status, run.stdout, run.stderr)
    assert "/readyz answered 503" in run.stdout


def test_a_worker_container_is_healthy_while_its_queue_answers(tmp_path: Path) -> None:
    """A worker started as the Dockerfile header shows (`docker run ... python -m service
    worker`) serves no HTTP: its health is its queue's, not the API's /readyz."""
    run = _run_healthcheck(tmp_path, ["worker"])  # the SQLite queue under the state folder
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert run.stdout.strip() == "healthy: worker"
    unreachable = _run_healthcheck(
        tmp_path, ["worker"], PERCEPTRON_REDIS_URL="redis://127.0.0.1:9/0"
    )
    assert unreachable.returncode == 1
    assert "worker: the job queue does not answer" in unreachable.stdout


def test_a_container_whose_process_has_not_started_is_unhealthy(tmp_path: Path) -> None:
    run = _run_healthcheck(tmp_path, [])
    assert run.returncode == 1
    assert run.stdout.startswith("unhealthy: no perceptron api or worker has started")
    (tmp_path / "perceptron-worker.pid").write_text("999999999")  # a process that is gone
    assert _run_healthcheck(tmp_path, []).returncode == 1


def test_volumes_mount_where_the_settings_point() -> None:
    env = image_env()
    services = compose()["services"]
    runtime = " ".join(i.arguments for i in final_stage() if i.keyword == "RUN")
    models_copy = next(
        i.arguments.split()[-1]
        for i in final_stage()
        if i.keyword == "COPY" and i.arguments.split()[-2] == "models/"
    )
    workdir = [i.arguments for i in final_stage() if i.keyword == "WORKDIR"][-1]
    # The bundled versions are baked in, the service's like the code (no --chown), and seed
    # the models volume, which is where trained versions and pins go.
    assert f"{workdir}/{models_copy}".rstrip("/") == env["PERCEPTRON_BUNDLED_MODELS_DIR"]
    copy = next(i for i in final_stage() if i.keyword == "COPY" and "models/" in i.arguments)
    assert "--chown" not in copy.arguments
    assert env["PERCEPTRON_MODELS_DIR"] != env["PERCEPTRON_BUNDLED_MODELS_DIR"]
    for setting in VOLUME_PATH_SETTINGS:
        path = env[setting]
        # Created owned by the service user, so a fresh named volume is seeded writable.
        assert re.search(rf"install -d -o \S+ -g \S+ [^&]*{re.escape(path)}\b", runtime), path
        for name in PERCEPTRON_SERVICES:
            assert setting not in services[name]["environment"], f"{name} overrides {setting}"
            targets = [v.split(":")[1] for v in services[name]["volumes"]]
            assert path in targets, f"{name} keeps {setting}={path} outside a volume"


def test_compose_defaults_equal_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = compose()["services"]["api"]["environment"]
    for key, value in environment.items():
        if key in CONTAINER_DEFAULTS:
            assert interpolate(str(value)) == CONTAINER_DEFAULTS[key]
            continue
        variables = compose_variables(str(value))
        assert list(variables) == [key], f"{key} should be ${{{key}:-default}}"
        default = variables[key] or ""
        field = next(
            n for n, f in Settings.model_fields.items() if key == f"PERCEPTRON_{n}".upper()
        )
        expected = Settings.model_fields[field].get_default(call_default_factory=True)
        monkeypatch.setenv(key, default)
        actual = getattr(Settings(_env_file=None), field)  # type: ignore[call-arg]
        if default == "":  # an empty value must mean "unset" to the code reading it
            assert expected in (None, []) and not actual, key
        else:
            assert actual == expected, f"{key}: compose default {default!r} != {expected!r}"
        monkeypatch.delenv(key)


def test_env_example_documents_every_compose_variable() -> None:
    documented = env_example_keys()
    variables = compose_variables("\n".join(compose_strings()))
    assert set(variables) <= set(documented), set(variables) - set(documented)
    for key in documented:
        assert key in accepted_env_names() or key in variables, f"{key} is used nowhere"


def test_env_example_is_valid_and_its_token_is_refused_in_production() -> None:
    settings = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    assert settings.environment == "development" and settings.admin_token is not None
    token = settings.admin_token.get_secret_value()
    assert token in PLACEHOLDER_TOKENS
    with pytest.raises(ValidationError, match="PERCEPTRON_ADMIN_TOKEN"):
        Settings(_env_file=ENV_EXAMPLE, environment="production")  # type: ignore[call-arg]
