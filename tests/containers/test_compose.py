"""docker-compose.yml validated two ways (the Compose Specification's JSON schema and Debian's
docker-compose 1.29), plus the rules that make `up`, `--scale worker=3` and the gpu profile work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.containers.container_files import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    PERCEPTRON_SERVICES,
    REPO,
    compose,
    compose_variables,
    interpolate,
    tool,
)

WORKERS = ("worker", "worker-gpu")


def _clean_env() -> dict[str, str]:
    """No PERCEPTRON_* or other variables from this shell: compose would substitute them."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}


def test_matches_the_compose_specification_schema() -> None:
    checker = tool("check-jsonschema", "run `make install-dev`")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "profiles",
    [(), ("gpu",), ("production",), ("gpu", "postgres", "production")],
    ids=["default", "gpu", "production", "all"],
)
@pytest.mark.parametrize("env_file", ["none", ".env.example"])
def test_docker_compose_config_accepts_it(
    tmp_path: Path, profiles: tuple[str, ...], env_file: str
) -> None:
    docker_compose = tool("docker-compose", "run `make browser-deps` (Debian's docker-compose)")
    if env_file == "none":
        empty = tmp_path / "empty.env"
        empty.write_text("", encoding="utf-8")
        env_path = empty
    else:
        env_path = ENV_EXAMPLE
    profile_args = [arg for profile in profiles for arg in ("--profile", profile)]
    files = ["--file", str(COMPOSE_FILE), "--project-directory", str(REPO)]
    result = subprocess.run(
        [docker_compose, *files, "--env-file", str(env_path), *profile_args, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
        check=False,
    )
    # No output either: an unset variable without a default is only a warning there.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_no_keys_that_docker_compose_1_29_rejects() -> None:
    assert "name" not in compose() and "version" not in compose()
    for name, service in compose()["services"].items():
        assert "gpus" not in service, f"{name}: use deploy.resources.reservations.devices"


def test_workers_scale() -> None:
    for name in WORKERS:
        service = compose()["services"][name]
        assert "container_name" not in service and "ports" not in service, name
    assert all("container_name" not in s for s in compose()["services"].values())


def test_plain_up_needs_no_gpu_and_the_gpu_profile_reserves_one() -> None:
    services = compose()["services"]
    default = {name: s for name, s in services.items() if not s.get("profiles")}
    assert set(default) == {"api", "worker", "redis"}
    assert not any(_devices(s) for s in default.values())
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["args"]["VARIANT"] == "gpu" and gpu["image"].endswith(":gpu")
    assert _devices(gpu) == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert services["worker"]["build"]["args"]["VARIANT"] == "cpu"


def test_state_lives_in_named_volumes() -> None:
    declared = set(compose()["volumes"])
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert not source.startswith((".", "/", "~")), f"{name}: {volume} is a bind mount"
            assert source in declared, f"{name}: declare volume {source}"


def test_every_service_restarts_and_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            has_check = "healthcheck" in services[dependency] or dependency == "api"
            assert has_check, f"{dependency} needs a healthcheck ({name} waits for it)"
    for name in ("redis", "postgres"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in PERCEPTRON_SERVICES:
        # The image's HEALTHCHECK checks whichever role the container runs (API or worker).
        assert "healthcheck" not in services[name], name


def test_redis_and_postgres_images_are_pinned() -> None:
    for name in ("redis", "postgres"):
        _, _, tag = compose()["services"][name]["image"].partition(":")
        assert tag.count(".") >= 1 and tag[0].isdigit(), f"{name}: pin a version, not {tag!r}"


def test_perceptron_services_share_one_definition() -> None:
    services = compose()["services"]
    api = services["api"]
    for name in PERCEPTRON_SERVICES:
        assert services[name]["environment"] == api["environment"], name
        assert services[name]["volumes"] == api["volumes"], name


def _devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    devices: list[dict[str, Any]] = reservations.get("devices", [])
    return devices


def test_redis_and_postgres_stay_on_the_internal_network_unpublished() -> None:
    services = compose()["services"]
    assert compose()["networks"]["backend"] == {"internal": True}
    for name in ("redis", "postgres"):
        assert "ports" not in services[name], f"{name} must never be published"
        assert services[name]["networks"] == ["backend"], name
    for name in PERCEPTRON_SERVICES:
        assert "backend" in services[name]["networks"], f"{name} cannot reach Redis"


def test_redis_requires_the_password_the_services_connect_with() -> None:
    redis = compose()["services"]["redis"]
    password = compose_variables(redis["environment"]["REDIS_PASSWORD"])
    assert list(password) == ["REDIS_PASSWORD"]
    assert '--requirepass "$$REDIS_PASSWORD"' in redis["command"][-1]
    assert 'REDISCLI_AUTH="$$REDIS_PASSWORD"' in redis["healthcheck"]["test"][-1]
    url = compose()["services"]["api"]["environment"]["PERCEPTRON_REDIS_URL"]
    assert "REDIS_PASSWORD" in compose_variables(url)
    assert interpolate(url).startswith(f"redis://:{password['REDIS_PASSWORD']}@redis:")


@pytest.mark.servers
def test_the_compose_redis_command_refuses_clients_without_the_password(tmp_path: Path) -> None:
    """Runs the redis service's command with Debian's redis-server (the image's is the same
    program), on loopback, and connects as the API would and as an intruder would."""
    import redis as redis_client

    from tests.real_servers import free_port, wait_until

    service = compose()["services"]["redis"]
    shell, flag, script = service["command"]
    port = free_port()
    script = script.replace("$$", "$") + f" --port {port} --bind 127.0.0.1 --dir {tmp_path}"
    password = "pa ss'wo$rd"  # quoting must survive anything a person may choose
    server = subprocess.Popen(
        [shell, flag, script],
        env={**_clean_env(), "REDIS_PASSWORD": password},
        stdout=subprocess.DEVNULL,
    )
    try:
        with redis_client.Redis(port=port, password=password) as api:
            wait_until(lambda: _pings(api), 30, "the compose redis command to answer")
        with (
            redis_client.Redis(port=port) as intruder,
            pytest.raises(redis_client.AuthenticationError),
        ):
            intruder.lpush("huey.redis.perceptron-jobs", b"anything")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
