"""The production profile's reverse proxy (deploy/proxy), checked without a Docker engine: it
serves TLS, and its limits on headers, bodies, slow and idle clients and connections are at
least as strict as the API's own settings, so a client meets the proxy's limit first."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from service.settings import Settings
from tests.containers.container_files import REPO, compose, interpolate

PROXY = REPO / "deploy" / "proxy"
_DIRECTIVE = re.compile(
    r"^\s*([a-z_0-9]+)\s+((?:'[^']*'|\"[^\"]*\"|[^;{'\"])*?)\s*[;{]", re.MULTILINE
)
_SIZE = {"": 1, "k": 1024, "m": 1024 * 1024}


def directives(path: Path = PROXY / "nginx.conf") -> dict[str, list[str]]:
    """Each directive of the file and its argument strings, wherever it appears (comments
    dropped)."""
    text = re.sub(r"#[^\n]*", "", path.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for name, arguments in _DIRECTIVE.findall(text):
        found.setdefault(name, []).append(arguments)
    return found


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[unit]


def size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([km]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * _SIZE[unit]


def test_the_production_profile_puts_the_proxy_in_front_of_the_api() -> None:
    services = compose()["services"]
    proxy = services["proxy"]
    assert proxy["profiles"] == ["production"]
    assert proxy["build"]["context"] == "deploy/proxy"
    assert proxy["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert {port.rsplit(":", 1)[1] for port in proxy["ports"]} == {"80", "443"}
    assert set(proxy["secrets"]) == {"tls_certificate", "tls_key"}
    assert set(compose()["secrets"]) == {"tls_certificate", "tls_key"}
    base = (PROXY / "Dockerfile").read_text(encoding="utf-8").split("FROM ", 1)[1].split()[0]
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-\w+", base), f"pin the nginx image, not {base}"
    assert "upstream api" in (PROXY / "nginx.conf").read_text(encoding="utf-8")
    assert "api:8000 max_fails=0" in directives()["server"]


def test_tls_is_served_with_the_compose_secrets() -> None:
    found = directives()
    assert "443 ssl" in found["listen"]
    assert found["ssl_certificate"] == ["/run/secrets/tls_certificate"]
    assert found["ssl_certificate_key"] == ["/run/secrets/tls_key"]
    assert found["ssl_protocols"] == ["TLSv1.2 TLSv1.3"]
    assert any(r"https://$host" in target for target in found["return"])


def test_limits_are_at_least_as_strict_as_the_api() -> None:
    found = directives()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert seconds(found["client_header_timeout"][0]) <= settings.header_timeout_s
    assert seconds(found["client_body_timeout"][0]) <= settings.body_timeout_s
    assert seconds(found["keepalive_timeout"][0]) <= settings.keep_alive_timeout_s <= 20
    assert size(found["client_max_body_size"][0]) == settings.max_body_bytes
    count, buffer = found["large_client_header_buffers"][0].split()
    assert int(count) * size(buffer) <= settings.max_header_bytes
    # The proxy closes idle upstream connections before the API would.
    upstream_idle = seconds(found["keepalive_timeout"][1])
    assert upstream_idle < settings.keep_alive_timeout_s
    assert int(found["worker_connections"][0]) > 0
    assert found["limit_conn"] == ["per_client 64"]
    assert found["limit_conn_status"] == ["429"] and found["limit_req_status"] == ["429"]


def test_the_proxys_own_errors_use_the_error_shape() -> None:
    found = directives()
    bodies = [value for value in found["return"] if value.split()[0] != "301"]
    assert bodies and all('"error":' in body and '"code":' in body for body in bodies)
    handled = {code for page in found["error_page"] for code in page.split()[:-2]}
    assert {"400", "408", "413", "429", "494", "502", "503", "504"} <= handled


def test_the_api_trusts_the_proxy_and_only_the_proxy_to_name_clients() -> None:
    """Behind the proxy every request comes from its address: unless the API believes its
    X-Forwarded-For, all clients would share one address, and so one feedback allowance."""
    services = compose()["services"]
    proxy_address = services["proxy"]["networks"]["edge"]["ipv4_address"]
    subnet = compose()["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(subnet)
    assert "edge" in services["api"]["networks"]
    assert not any("edge" in services[name].get("networks", []) for name in ("worker", "redis"))
    trusted = interpolate(services["api"]["environment"]["PERCEPTRON_TRUSTED_PROXIES"])
    assert Settings(_env_file=None, trusted_proxies=trusted).trusted_proxies == [proxy_address]
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in directives()["proxy_set_header"]


def test_only_predictions_are_resent_to_the_next_replica() -> None:
    """A POST is resent after a replica fails only where sending it twice is harmless: the
    prediction routes. Jobs, feedback and administration are never resent."""
    text = re.sub(r"#[^\n]*", "", (PROXY / "nginx.conf").read_text(encoding="utf-8"))
    blocks = re.findall(r"location\s+([^{]+)\{([^}]*)\}", text)
    resending = {where.strip() for where, body in blocks if "non_idempotent" in body}
    assert resending == {
        "~ ^/(digit|mpg)$",
        "~ ^/v1/models/[^/]+(/versions/[^/]+)?:predict$",
        "~ ^/v2/models/[^/]+(/versions/[^/]+)?/infer$",
    }
    for pattern in resending:
        regex = re.compile(pattern.removeprefix("~ "))
        for path in (
            "/digit",
            "/mpg",
            "/v1/models/digit:predict",
            "/v2/models/mpg/versions/2/infer",
        ):
            if regex.match(path):
                break
        else:
            raise AssertionError(f"{pattern} matches no prediction route")
        for path in ("/digit/feedback", "/jobs", "/models/mpg/served-version", "/samples"):
            assert not regex.match(path), (pattern, path)


def test_behind_the_proxy_only_the_total_connection_cap_applies() -> None:
    """The API counts connections per socket address; behind the proxy that is the proxy's,
    so a per-address cap under the total would refuse the proxy, not a client. The proxy caps
    each client itself."""
    environment = compose()["services"]["api"]["environment"]
    per_address = int(interpolate(environment["PERCEPTRON_MAX_CONNECTIONS_PER_CLIENT"]))
    assert per_address == Settings(_env_file=None).max_connections
    assert directives()["limit_conn"] == ["per_client 64"]
