"""Which address a request comes from: the socket's peer, or, when that peer is a trusted proxy,
the client the proxy names in X-Forwarded-For.

Trusted proxies are `trusted_proxies` (addresses and networks; loopback by default: a proxy on
the same host is the documented setup, and a local client is already loopback). Their
X-Forwarded-For is read from the right, the end each proxy appends to: a hop that is itself a
trusted proxy is skipped, and the first that is not is the client, so a client cannot pick its
address by sending the header itself. Only a valid IP address is ever taken; anything else ends
the walk at the last trusted hop. A request's client is therefore always a real address (at
most 39 characters), whatever a client sends, and everything that counts or logs clients (the
rate limits, the access log, the loopback-only administration) reads this one answer from the
ASGI scope. X-Forwarded-Proto from a trusted proxy sets the scheme.

uvicorn's own proxy-header handling is switched off (service/cli/__init__.py): it takes any
string as the client and its trust from the FORWARDED_ALLOW_IPS environment variable, outside
the settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from service.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_FORWARDED_HOPS = 16
"""X-Forwarded-For entries read at most, from the right: no real chain of proxies is longer."""
_SCHEMES = {"http": "http", "https": "https"}


def parse_address(text: str) -> Address | None:
    """The IP address in `text` (bare, `a.b.c.d:port` or `[v6]:port`), without any IPv6 zone and
    with an IPv4-mapped IPv6 address as IPv4; None when `text` is not one."""
    value = text.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # IPv4 with a port; IPv6 has at least two colons
        value = value.partition(":")[0]
    if ":" in value:  # an IPv6 zone (fe80::1%eth0) names the host's interface, not the client
        value = value.partition("%")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`entries` as networks (a bare address is a network of one); raises ValueError naming the
    first entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


class TrustedProxies:
    """The proxies whose X-Forwarded-For is believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = parse_networks(entries)
        self.trusts = lru_cache(maxsize=4096)(self._trusts)
        """Whether a peer (as the server reports it) is trusted, cached: a server sees few peers
        and asks for each on every request."""

    def _trusts(self, host: str) -> bool:
        address = parse_address(host)
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[bytes]) -> str:
        """The client of a request whose socket peer is the trusted proxy `peer` and whose
        X-Forwarded-For headers are `forwarded_for`."""
        hops = [hop for header in forwarded_for for hop in header.split(b",")]
        client = peer
        for raw in reversed(hops[-MAX_FORWARDED_HOPS:]):
            address = parse_address(raw.decode("latin-1"))
            if address is None:
                break
            client = str(address)
            if not any(address in network for network in self.networks):
                break
        return client


class ClientAddressMiddleware:
    """Sets the ASGI scope's client (and scheme) from a trusted proxy's forwarding headers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.proxies = TrustedProxies(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer and self.proxies.trusts(peer[0]):
            forwarded_for: list[bytes] = []
            proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded_for.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value
            if forwarded_for:
                scope["client"] = (self.proxies.client(peer[0], forwarded_for), 0)
            scheme = _SCHEMES.get(proto.decode("latin-1").strip().lower()) if proto else None
            if scheme:
                scope["scheme"] = scheme
        await self.app(scope, receive, send)
