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
