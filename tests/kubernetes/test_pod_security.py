"""Every pod the overlays run meets the "restricted" Pod Security level (which the namespace
enforces), checked offline by tests/kubernetes/pod_security.py; and that checker finds each
kind of violation it is meant to."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.kubernetes.manifests import OVERLAYS, one, workloads
from tests.kubernetes.pod_security import restricted_violations


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_level(overlay: str) -> None:
    checked = 0
    for workload in workloads(overlay):
        assert restricted_violations(workload.pod) == [], f"{workload.kind}/{workload.name}"
        checked += 1
    assert checked >= 3


def test_the_namespace_enforces_the_restricted_level() -> None:
    labels = one("default", "Namespace", "perceptron")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def api_pod() -> dict[str, Any]:
    return copy.deepcopy(one("default", "Deployment", "perceptron-api")["spec"]["template"]["spec"])


BREAKAGES = {
    "host namespaces": lambda pod: pod.update(hostNetwork=True),
    "HostPath volumes": lambda pod: pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "privileged containers": lambda pod: pod["containers"][0]["securityContext"].update(
        privileged=True
    ),
    "capabilities": lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(
        add=["SYS_ADMIN"]
    ),
    "must drop ALL": lambda pod: pod["containers"][0]["securityContext"].pop("capabilities"),
    "privilege escalation": lambda pod: pod["containers"][0]["securityContext"].pop(
        "allowPrivilegeEscalation"
    ),
    "running as non-root:": lambda pod: pod["securityContext"].pop("runAsNonRoot"),
    "non-root user": lambda pod: pod["containers"][0]["securityContext"].update(runAsUser=0),
    "seccomp": lambda pod: pod["securityContext"].pop("seccompProfile"),
    "host ports": lambda pod: pod["containers"][0]["ports"][0].update(hostPort=8000),
    "sysctls": lambda pod: pod["securityContext"].update(
        sysctls=[{"name": "kernel.msgmax", "value": "1"}]
    ),
    "SELinux": lambda pod: pod["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
    "/proc mount": lambda pod: pod["containers"][0]["securityContext"].update(procMount="Unmasked"),
}


@pytest.mark.parametrize("control", sorted(BREAKAGES))
def test_the_checker_finds_each_violation(control: str) -> None:
    pod = api_pod()
    assert restricted_violations(pod) == []
    BREAKAGES[control](pod)
    violations = restricted_violations(pod)
    assert any(control in violation for violation in violations), violations
