"""Every overlay renders with `kubectl kustomize` and validates, strictly (no unknown field),
against the API schemas of every Kubernetes version docs/kubernetes.md names, offline
(kubernetes-validate bundles them). KEDA's kinds are custom resources with no bundled schema:
tests/kubernetes/test_agreement.py checks the fields they use."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from tests.kubernetes.manifests import OVERLAYS, documented_versions, one, rendered

CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication"}


def test_the_overlays_are_the_documented_ones() -> None:
    assert set(OVERLAYS) == {"default", "local", "gpu", "keda"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_validates(overlay: str) -> None:
    documents = rendered(overlay)
    assert documents
    kinds = {doc["kind"] for doc in documents}
    assert {"Deployment", "Service", "Job", "ConfigMap", "Secret", "NetworkPolicy"} <= kinds
    for version in documented_versions():
        for doc in documents:
            where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']} on Kubernetes {version}"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except SchemaNotFoundError:
                assert doc["kind"] in CUSTOM_KINDS, f"{where}: no schema"
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{where}: {error.message}")


def test_the_validator_refuses_a_wrong_manifest() -> None:
    deployment = copy.deepcopy(one("default", "Deployment", "perceptron-api"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, documented_versions()[-1], strict=True)
    deployment = copy.deepcopy(one("default", "Deployment", "perceptron-api"))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, documented_versions()[0], strict=True)
