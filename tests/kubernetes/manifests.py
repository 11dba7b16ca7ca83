"""The Kubernetes manifests as `kubectl kustomize` renders them (kubectl bundles kustomize and
needs no cluster for it), and readers for the parts the tests compare with the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
OVERLAYS = tuple(
    sorted(p.parent.name for p in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))
)
DOCS = REPO / "docs" / "kubernetes.md"
WORKLOAD_KINDS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
}
"""Kinds that run pods, and where their pod spec is."""
PROJECT_IMAGE = re.compile(r"^perceptron:(cpu|gpu)$")


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is not installed; it renders the kustomize overlays (apt or the "
            "Kubernetes release binaries)",
            pytrace=False,
        )
    return found


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize deploy/kubernetes/overlays/<overlay>` prints."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(overlay: str, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        doc
        for doc in rendered(overlay)
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = find(overlay, kind, name)
    return found


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    pod: dict[str, Any]

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.pod.get("initContainers", [])) + list(self.pod["containers"])

    def container(self, name: str) -> dict[str, Any]:
        (found,) = [c for c in self.containers if c["name"] == name]
        return found


def workloads(overlay: str) -> Iterator[Workload]:
    for doc in rendered(overlay):
        path = WORKLOAD_KINDS.get(doc["kind"])
        if path is None:
            continue
        pod: Any = doc
        for key in path:
            pod = pod[key]
        yield Workload(doc["kind"], doc["metadata"]["name"], pod)


def project_containers(overlay: str) -> Iterator[tuple[Workload, dict[str, Any]]]:
    """The containers that run this project's image."""
    for workload in workloads(overlay):
        for container in workload.containers:
            if PROJECT_IMAGE.match(container["image"]):
                yield workload, container


def environment(overlay: str, container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets from its ConfigMaps, Secrets and `env` (in the order
    Kubernetes applies them: envFrom, then env)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(one(overlay, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            secret = one(overlay, "Secret", source["secretRef"]["name"])
            values.update(_decoded(secret))
    for variable in container.get("env", []):
        if "value" in variable:
            values[variable["name"]] = variable["value"]
    return values


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return {**data, **secret.get("stringData", {})}


def documented_versions() -> list[str]:
    """The Kubernetes versions docs/kubernetes.md says the manifests are validated against
    (its line "validated against the schemas of Kubernetes 1.X to 1.Y")."""
    found = re.search(
        r"schemas of Kubernetes 1\.(\d+) to 1\.(\d+)", DOCS.read_text(encoding="utf-8")
    )
    assert found, f"{DOCS} names no Kubernetes versions"
    first, last = int(found[1]), int(found[2])
    return [f"1.{minor}.0" for minor in range(first, last + 1)]


def local_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())
