"""Which client a request is counted and logged as (service/http/client_address.py): the socket's
peer, unless that peer is a trusted proxy, whose X-Forwarded-For then names the client, read
from the right and only ever as a valid IP address. The per-client feedback limit
(service/http/rate_limit.py) counts that address, so a client cannot get a fresh allowance by
sending the header itself."""

from __future__ import annotations

import asyncio
import logging

import pytest

from service.http.client_address import ClientAddressMiddleware, TrustedProxies, parse_address
from service.http.rate_limit import client_key
from service.settings import Settings
from tests.conftest import BUNDLED_MODELS, LOOPBACK_CLIENT, REMOTE_CLIENT
from tests.samples.test_feedback_api import send

PROXY = ("10.0.0.5", 41000)


def resolved(peer: tuple[str, int], headers: dict[str, str], trusted: str = "127.0.0.1,::1"):
    """The (client, scheme) ClientAddressMiddleware leaves in the scope of a request from
    `peer` with `headers`."""
    seen: dict[str, object] = {}

    async def app(scope, receive, send) -> None:
        seen.update(client=scope["client"], scheme=scope["scheme"])

    settings = Settings(_env_file=None, trusted_proxies=trusted)
    middleware = ClientAddressMiddleware(app, settings)
    scope = {
        "type": "http",
        "client": peer,
        "scheme": "http",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
    }
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    return seen["client"][0], seen["scheme"]  # type: ignore[index]


def test_an_untrusted_peer_cannot_name_its_client() -> None:
    assert resolved(REMOTE_CLIENT, {"X-Forwarded-For": "198.51.100.1"}) == (
        REMOTE_CLIENT[0],
        "http",
    )
    assert resolved(REMOTE_CLIENT, {"X-Forwarded-Proto": "https"})[1] == "http"


def test_a_trusted_proxy_names_the_client_read_from_the_right() -> None:
    forwarded = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1", "X-Forwarded-Proto": "https"}
    # The left entry is whatever the client sent; the proxy appended the right one.
    assert resolved(LOOPBACK_CLIENT, forwarded) == ("198.51.100.1", "https")
    # A chain of trusted proxies is skipped, each header line counts, ports are dropped.
    chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1:5000, 10.1.1.1"}
    assert resolved(PROXY, chain, trusted="10.0.0.0/8")[0] == "198.51.100.1"
    assert resolved(PROXY, chain, trusted="10.0.0.5")[0] == "10.1.1.1"
    assert resolved(PROXY, {"X-Forwarded-For": "[2001:db8::7]:443"}, "10.0.0.0/8")[0] == (
        "2001:db8::7"
    )
    # Nothing trusted: the peer, whatever it sends.
    assert resolved(LOOPBACK_CLIENT, forwarded, trusted="")[0] == "127.0.0.1"


@pytest.mark.parametrize(
    "header",
    ["x" * 30_000, "not-an-address", "198.51.100.1, garbage", "", "::ffff:zz", "1.2.3.4%x"],
)
def test_only_a_valid_address_is_ever_taken(header: str) -> None:
    client, _ = resolved(LOOPBACK_CLIENT, {"X-Forwarded-For": header})
    assert client == "127.0.0.1"


def test_addresses_are_normalised() -> None:
    assert str(parse_address("::ffff:198.51.100.1")) == "198.51.100.1"
    assert str(parse_address("fe80::1%eth0")) == "fe80::1"
    assert parse_address("[::1") is None
    assert parse_address("1.2.3.4:80:90") is None
    assert TrustedProxies(["10.0.0.0/8"]).trusts("10.200.0.1")
    assert not TrustedProxies(["10.0.0.0/8"]).trusts("testclient")


def test_limiter_keys_are_addresses_and_ipv6_counts_by_its_64() -> None:
    assert client_key("198.51.100.1") == "198.51.100.1"
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("testclient") == client_key(None) == client_key("x" * 1000)
    assert len(client_key("x" * 1000)) < 20


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings(_env_file=None, trusted_proxies="proxy.internal")


@pytest.fixture
def feedback(client_factory, settings_factory):
    """Clients of one app (bundled models, two feedback requests a minute per address)."""
    settings = settings_factory(models_dir=BUNDLED_MODELS, feedback_per_minute=2)
    app_client = client_factory(settings)

    def client_from(peer: tuple[str, int]):
        other = client_factory(settings, client=peer)
        other.app.state.feedback_limiter = app_client.app.state.feedback_limiter
        return other

    return client_from


def test_a_client_cannot_reset_its_allowance_with_the_header(feedback) -> None:
    remote = feedback(REMOTE_CLIENT)
    statuses = [
        remote.post(
            "/digit/feedback",
            files={"file": ("7.png", b"", "image/png")},
            data={"label": "7"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        ).status_code
        for n in range(4)
    ]
    assert statuses[2:] == [429, 429], statuses


def test_clients_behind_a_trusted_proxy_each_get_their_own_allowance(feedback, caplog) -> None:
    proxy = feedback(LOOPBACK_CLIENT)

    def from_client(address: str):
        proxy.headers["X-Forwarded-For"] = f"6.6.6.6, {address}"
        return send(proxy, 7)

    with caplog.at_level(logging.INFO, logger="service.access"):
        assert [from_client("198.51.100.1").status_code for _ in range(3)] == [201, 201, 429]
        assert from_client("198.51.100.2").status_code == 201
    logged = {getattr(r, "client", None) for r in caplog.records if r.name == "service.access"}
    assert logged == {"198.51.100.1", "198.51.100.2"}
