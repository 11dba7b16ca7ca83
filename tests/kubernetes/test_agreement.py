"""The manifests agree with the code, the Dockerfile and compose: probe paths are routes that
answer any Host, every environment variable is a setting the code reads (and the values parse),
ports, uid and writable paths are the image's, image names are compose's, commands are
`python -m service` roles, and the KEDA triggers read the queue and tables the code writes."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
from pydantic import ValidationError

from service.cli import UVICORN_OPTIONS, WORKER_EXIT_MARGIN_S
from service.database.tables import JobRow
from service.http.hosts import PROBE_PATHS
from service.jobs.queue import build_queue
from service.jobs.store import JobStatus
from service.settings import Settings
from service.settings_doc import accepted_env_names
from tests.containers.container_files import compose, final_stage, image_env, interpolate
from tests.kubernetes.manifests import (
    OVERLAYS,
    environment,
    find,
    one,
    project_containers,
    workloads,
)

ROLES = {"api", "worker", "migrate"}


def dockerfile(keyword: str) -> str:
    (found,) = [i.arguments for i in final_stage() if i.keyword == keyword]
    return found


def settings_of(env: dict[str, str]) -> Settings:
    values = {k: v for k, v in {**image_env(), **env}.items() if k.startswith("PERCEPTRON_")}
    return Settings(
        _env_file=None, **{k.removeprefix("PERCEPTRON_").lower(): v for k, v in values.items()}
    )


@pytest.fixture(scope="module")
def app_routes() -> set[tuple[str, str]]:
    from service.app import create_app

    paths = create_app(Settings(_env_file=None)).openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_routes_that_exist_and_answer_any_host(overlay: str, app_routes) -> None:
    api = one(overlay, "Deployment", "perceptron-api")["spec"]["template"]["spec"]
    (container,) = api["containers"]
    probes = {kind: container[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in probes.values():
        path = probe["httpGet"]["path"]
        assert ("GET", path) in app_routes and path in PROBE_PATHS, path
        assert probe["httpGet"]["port"] in {p["name"] for p in container["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_environment_variable_is_a_setting_and_parses(overlay: str) -> None:
    known = accepted_env_names()
    for workload, container in project_containers(overlay):
        env = environment(overlay, container)
        unknown = set(env) - known
        assert not unknown, f"{workload.name}: {unknown} are not settings"
        if env.get("PERCEPTRON_ADMIN_TOKEN") == "change-me":
            # The placeholders of the base's Secret must stop a production start, loudly.
            with pytest.raises(ValidationError, match="PERCEPTRON_ADMIN_TOKEN"):
                settings_of(env)
            env = {
                **env,
                "PERCEPTRON_ADMIN_TOKEN": "a-real-token-of-enough-length",
                "PERCEPTRON_REDIS_URL": env["PERCEPTRON_REDIS_URL"].replace("change-me", "s3cret"),
            }
        settings = settings_of(env)
        # Several replicas share one job database and queue: never a SQLite file per pod.
        assert settings.database_url and settings.redis_url, workload.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_image_runs_as_the_dockerfile_says(overlay: str) -> None:
    uid, gid = (int(part) for part in dockerfile("USER").split(":"))
    port = int(dockerfile("EXPOSE"))
    assert port == int(image_env()["PERCEPTRON_PORT"])
    for workload, container in project_containers(overlay):
        context = workload.pod["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid), workload.name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["command"][:3] == ["python", "-m", "service"]
        assert container["command"][3] in ROLES, container["command"]
        for declared in container.get("ports", []):
            assert declared["containerPort"] == port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_folder_the_service_writes_is_a_volume(overlay: str) -> None:
    """The root file system is read-only: the models, state and cache folders and /tmp (where
    the healthcheck's notes, job scratch files and metrics files go) must be mounted."""
    for workload, container in project_containers(overlay):
        settings = settings_of(
            {**environment(overlay, container), "PERCEPTRON_ENVIRONMENT": "development"}
        )
        mounts = [PurePosixPath(m["mountPath"]) for m in container.get("volumeMounts", [])]
        needed = [PurePosixPath("/tmp"), PurePosixPath(str(settings.state_dir))]
        if container["command"][3] != "migrate":
            needed += [
                PurePosixPath(str(settings.models_dir)),
                PurePosixPath(str(settings.cache_dir)),
            ]
        for folder in needed:
            assert any(folder == m or m in folder.parents for m in mounts), (workload.name, folder)
    models = [
        m
        for _, container in project_containers(overlay)
        for m in container.get("volumeMounts", [])
        if m["name"] == "models"
    ]
    assert models and {m["mountPath"] for m in models} == {image_env()["PERCEPTRON_MODELS_DIR"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_image_names_are_composes(overlay: str) -> None:
    services = compose()["services"]
    expected = {interpolate(services[name]["image"]) for name in ("api", "worker", "worker-gpu")}
    third_party = {interpolate(services[name]["image"]) for name in ("redis", "postgres")}
    for workload in workloads(overlay):
        for container in workload.containers:
            assert container["image"] in expected | third_party, (workload.name, container["image"])


def test_the_gpu_overlay_runs_the_gpu_image_on_gpu_nodes() -> None:
    worker = one("gpu", "Deployment", "perceptron-worker")["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    assert container["image"] == interpolate(compose()["services"]["worker-gpu"]["image"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert worker["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert (
        one("gpu", "Deployment", "perceptron-api")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        == "perceptron:cpu"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_uvicorn_process_per_api_pod_and_the_autoscaler_owns_the_count(overlay: str) -> None:
    deployment = one(overlay, "Deployment", "perceptron-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert environment(overlay, container)["PERCEPTRON_WORKERS"] == "1"
    assert "replicas" not in deployment["spec"]
    hpa = one(overlay, "HorizontalPodAutoscaler", "perceptron-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "perceptron-api"
    assert container["resources"]["requests"]["cpu"]  # utilisation is measured against it
    pdb = one(overlay, "PodDisruptionBudget", "perceptron-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_stop_within_their_grace_period(overlay: str) -> None:
    api = one(overlay, "Deployment", "perceptron-api")["spec"]["template"]["spec"]
    pause = int(api["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert (
        pause + UVICORN_OPTIONS["timeout_graceful_shutdown"] < api["terminationGracePeriodSeconds"]
    )
    worker = one(overlay, "Deployment", "perceptron-worker")["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    stop = float(environment(overlay, container)["PERCEPTRON_WORKER_STOP_TIMEOUT_S"])
    assert stop + WORKER_EXIT_MARGIN_S < worker["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_and_the_ingress(overlay: str) -> None:
    job = one(overlay, "Job", "perceptron-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["python", "-m", "service", "migrate"]
    ingress = one(overlay, "Ingress", "perceptron-api")
    (container,) = one(overlay, "Deployment", "perceptron-api")["spec"]["template"]["spec"][
        "containers"
    ]
    public_host = environment(overlay, container)["PERCEPTRON_PUBLIC_HOST"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [public_host]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = one(overlay, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_the_api(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in find(overlay, "NetworkPolicy")}
    deny = policies["perceptron-default-deny-ingress"]
    assert (
        deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    )
    api = policies["perceptron-api-from-ingress"]
    assert api["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert [p["port"] for rule in api["ingress"] for p in rule["ports"]] == ["http"]
    opened = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in policies.values()
        if p.get("ingress") and "matchLabels" in p["podSelector"]
    }
    assert opened <= {"api", "redis", "postgres"}
    for name in ("redis", "postgres"):
        if f"perceptron-{name}-from-app" in policies:
            (rule,) = policies[f"perceptron-{name}-from-app"]["ingress"]
            (source,) = rule["from"]
            (expression,) = source["podSelector"]["matchExpressions"]
            assert set(expression["values"]) <= {"api", "worker", "migrate"}


def test_keda_scales_workers_on_the_queue_the_code_uses() -> None:
    scaled = one("keda", "ScaledObject", "perceptron-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "perceptron-worker"
    assert "replicas" not in one("keda", "Deployment", "perceptron-worker")["spec"]
    triggers = {trigger["type"]: trigger for trigger in scaled["triggers"]}
    secret = environment(
        "keda",
        one("keda", "Deployment", "perceptron-worker")["spec"]["template"]["spec"]["containers"][0],
    )
    redis_url = secret["PERCEPTRON_REDIS_URL"]
    queue = build_queue(Settings(_env_file=None, redis_url=redis_url))
    try:
        assert triggers["redis"]["metadata"]["listName"] == queue.huey.storage.queue_key
    finally:
        queue.close()
    assert triggers["redis"]["metadata"]["databaseIndex"] == redis_url.rsplit("/", 1)[1]
    query = triggers["postgresql"]["metadata"]["query"]
    assert f"FROM {JobRow.__tablename__} " in query
    for status in (JobStatus.queued, JobStatus.running):
        assert f"'{status.value}'" in query
    references: dict[str, Any] = {}
    for trigger in scaled["triggers"]:
        auth = one("keda", "TriggerAuthentication", trigger["authenticationRef"]["name"])
        for ref in auth["spec"]["secretTargetRef"]:
            references[ref["parameter"]] = ref
            keys = one("keda", "Secret", ref["name"])["data"]
            assert ref["key"] in keys
    assert set(references) == {"address", "password", "connection"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_behind_the_ingress_only_the_total_connection_cap_applies(overlay: str) -> None:
    """Connections are counted per socket address, which is an ingress controller pod's: a
    per-address cap under the total would refuse the ingress, not a client."""
    (container,) = one(overlay, "Deployment", "perceptron-api")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {**environment(overlay, container), "PERCEPTRON_ENVIRONMENT": "development"}
    settings = settings_of(env)
    assert settings.max_connections_per_client == settings.max_connections
