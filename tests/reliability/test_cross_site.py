"""Another web site's page, run by the administrator's own browser, must not change what the
service does: not through a DNS name pointed at 127.0.0.1 (the Host check), not with a form or
a `text/plain` "simple" request (admin bodies are JSON only), and not from another origin (the
Origin check). The service runs on the bundled models: nothing here needs the data sets."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from service.http.hosts import host_name
from tests.conftest import BUNDLED_MODELS

JOB = {"model": "mpg", "hyperparameters": {"epochs": 1}, "promote": "never"}
EVIL = "http://attacker.example"


@pytest.fixture
def service(client_factory, settings_factory):
    """The app on the bundled models, no token configured, called from loopback."""
    return client_factory(settings_factory(models_dir=BUNDLED_MODELS, poll_interval_s=60))


def jobs_in(client) -> int:
    return int(client.get("/jobs").json()["total"])


def test_an_admin_call_through_a_rebound_name_is_refused(service) -> None:
    response = service.post("/jobs", json=JOB, headers={"Host": "attacker.example"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "host_not_allowed" and "PERCEPTRON_PUBLIC_HOST" in body["error"]
    assert body["request_id"] == response.headers["x-request-id"]
    for method, path in (("PUT", "/models/mpg/served-version"), ("GET", "/models")):
        answer = service.request(
            method, path, json={"version": 1}, headers={"Host": "attacker.example:8000"}
        )
        assert answer.status_code == 400, (method, path)
    assert jobs_in(service) == 0


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"])
def test_the_loopback_names_are_answered_with_or_without_a_port(service, host: str) -> None:
    assert service.get("/v2", headers={"Host": host}).status_code == 200


def test_the_public_name_is_answered_and_others_configured_too(
    client_factory, settings_factory
) -> None:
    client = client_factory(
        settings_factory(
            models_dir=BUNDLED_MODELS,
            public_host="perceptron.example.com",
            allowed_hosts="api,[::1]",
        )
    )
    for host in ("perceptron.example.com", "perceptron.example.com:443", "api:8000", "[::1]"):
        assert client.get("/v2", headers={"Host": host}).status_code == 200, host
    for host in ("localhost", "example.com", "perceptron.example.com.attacker.example"):
        assert client.get("/v2", headers={"Host": host}).status_code == 400, host


@pytest.mark.parametrize("host", ["10.244.1.7:8000", "10.244.1.7", "[fd00::7]:8000", ""])
def test_health_probes_answer_whatever_the_host(service, host: str) -> None:
    """What the kubelet's probes and load balancers' health checks send: the address they
    connect to. The probes answer it; every other route still refuses it."""
    headers = {"Host": host}
    for path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"):
        answer = service.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.text)
    for path in ("/v2", "/models", "/metrics", "/"):
        refused = service.get(path, headers=headers)
        assert refused.status_code == 400, path
        assert refused.json()["code"] == "host_not_allowed"
    assert service.get("/readyz", headers=headers).json()["ready"] is True


def test_host_names_lose_their_port_and_keep_ipv6_brackets() -> None:
    assert host_name("Example.COM:8080") == "example.com"
    assert host_name("[::1]:8000") == "[::1]"
    assert host_name("[::1]") == "[::1]"
    assert host_name("127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize(
    "host",
    [
        "localhost:8200@evil.com",
        "localhost:evil",
        "[::1]evil",
        "[::1]:80:80",
        "localhost:8000/",
        "user@localhost",
        "localhost evil",
        "localhost:123456",
    ],
)
def test_a_malformed_host_is_no_loopback_name(service, host: str) -> None:
    assert host_name(host) == ""
    response = service.get("/models", headers={"Host": host})
    assert response.status_code == 400 and response.json()["code"] == "host_not_allowed"


def test_a_text_plain_simple_post_from_another_site_starts_no_job(service) -> None:
    """What a cross-site `fetch(..., {mode: "no-cors", body: "..."})` or a form with
    enctype=text/plain sends: no preflight, so only the service can refuse it."""
    body = '{"model": "mpg", "hyperparameters": {"epochs": 1}}'
    cross_site = service.post(
        "/jobs", content=body, headers={"Content-Type": "text/plain", "Origin": EVIL}
    )
    assert cross_site.status_code == 403 and "origin" in cross_site.json()["error"]
    no_origin = service.post("/jobs", content=body, headers={"Content-Type": "text/plain"})
    assert no_origin.status_code == 415
    assert "application/json" in no_origin.json()["error"]
    form = service.post(
        "/jobs/anything/cancel",
        data={"x": "1"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert jobs_in(service) == 0


def test_admin_calls_from_another_origin_are_refused_even_as_json(service) -> None:
    refused = service.post("/jobs", json=JOB, headers={"Origin": EVIL})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    sandboxed = service.post("/jobs", json=JOB, headers={"Origin": "null"})
    assert sandboxed.status_code == 403
    unpin = service.delete("/models/mpg/served-version", headers={"Origin": EVIL})
    assert unpin.status_code == 403
    assert jobs_in(service) == 0
    # The service's own page (Origin = the Host it was loaded from) and scripts (no Origin).
    own = service.post("/jobs", json=JOB, headers={"Origin": "http://127.0.0.1"})
    assert own.status_code == 202, own.text
    assert service.post("/jobs", json=JOB).status_code == 202
    assert jobs_in(service) == 2


def test_a_cross_site_request_without_an_origin_is_refused(service) -> None:
    """What a browser marks as sent by another site's page, even without an Origin."""
    refused = service.post("/jobs", json=JOB, headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403 and "Sec-Fetch-Site" in refused.json()["error"]
    for site in ("same-origin", "none"):
        assert service.get("/models", headers={"Sec-Fetch-Site": site}).status_code == 200
    assert jobs_in(service) == 0


def test_listed_origins_may_administer_but_a_star_never_does(
    client_factory, settings_factory
) -> None:
    client = client_factory(
        settings_factory(
            models_dir=BUNDLED_MODELS, cors_origins="https://admin.example,*", poll_interval_s=60
        )
    )
    listed = client.post("/jobs", json=JOB, headers={"Origin": "https://admin.example"})
    assert listed.status_code == 202, listed.text
    assert client.post("/jobs", json=JOB, headers={"Origin": EVIL}).status_code == 403
    # A star does open reads to every site.
    read = client.get("/models", headers={"Origin": EVIL})
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == "*"


def test_a_star_with_credentials_refuses_to_start(settings_factory) -> None:
    with pytest.raises(ValidationError, match="PERCEPTRON_CORS_ALLOW_CREDENTIALS"):
        settings_factory(cors_origins="*", cors_allow_credentials=True)
    settings_factory(cors_origins="https://admin.example", cors_allow_credentials=True)


def test_a_star_in_production_is_warned_about(
    client_factory, settings_factory, caplog: pytest.LogCaptureFixture
) -> None:
    token = "a-real-production-token-0123456789"
    for environment, expected in (("development", 0), ("production", 1)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="service.app"):
            client_factory(
                settings_factory(
                    models_dir=BUNDLED_MODELS,
                    cors_origins="*",
                    environment=environment,
                    admin_token=token,
                )
            )
        warned = [r for r in caplog.records if "PERCEPTRON_CORS_ORIGINS=*" in r.getMessage()]
        assert len(warned) == expected, environment
