"""Which names the service answers to, and which web origins may administer it.

A page on another site can point a DNS name it controls at 127.0.0.1 and have the user's
browser call the service as if it were its own (DNS rebinding): the browser then sends that
name as Host. Checking Host against the names the service is known by stops it. Starlette's
TrustedHostMiddleware answers in plain text and cuts `[::1]:8000` at the first colon, hence
`HostCheck`.

The health probes answer whatever the Host: Kubernetes' kubelet and most load balancers send
the address they connect to (`Host: 10.244.1.7:8000`), which no setting can list in advance,
and a probe's answer (up, ready, the models' states) tells a rebinding page nothing it could
use.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.responses import Response

from service.http.error_handlers import error_response
from service.settings import Settings

ANY = "*"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
"""Liveness and readiness, answered whatever the Host (see above)."""


_AUTHORITY = re.compile(r"(?P<name>\[[0-9a-f:.]+\]|[a-z0-9._~-]+)(?::[0-9]{0,5})?")
"""A Host header's grammar (RFC 9110, section 7.2): a name or a bracketed IPv6 address, and an
optional port of digits; user information (`name@`), any other character, or text after the
closing bracket make it something else."""


def host_name(host_header: str) -> str:
    """The name in a Host header (or an Origin's authority), without the port, lower case;
    IPv6 addresses keep their brackets. "" when the value is not a well-formed host and port
    (`localhost:8200@evil.com`, `localhost:evil`, `[::1]evil`), which no setting can name."""
    match = _AUTHORITY.fullmatch(host_header.strip().lower())
    return match["name"] if match else ""


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The names accepted as Host: allowed_hosts and public_host."""
    names = {ANY if name == ANY else host_name(name) for name in settings.allowed_hosts}
    if settings.public_host:
        names.add(host_name(settings.public_host))
    names.discard("")
    return frozenset(names)


def is_allowed_origin(origin: str, host_header: str | None, settings: Settings) -> bool:
    """Whether a browser page at `origin` may administer the service: the service's own origin
    (the request's Host), the public host, or an origin listed in cors_origins (`*` does not
    count: it opens reads and predictions to every site, never administration)."""
    if origin in settings.cors_origins:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file: pages) and anything unparseable
    if host_header is not None and parts.netloc.lower() == host_header.strip().lower():
        return True
    public = host_name(settings.public_host) if settings.public_host else ""
    return bool(public) and host_name(parts.netloc) == public


class HostCheck:
    """Refuses, with 400 in the service's error shape, a request whose Host is not an allowed
    name (a missing Host included); `service.http.middleware.RequestGuardMiddleware` asks it before
    any route sees the request."""

    def __init__(self, settings: Settings) -> None:
        self.names = allowed_hosts(settings)
        self.any = ANY in self.names

    def refusal(self, header: bytes | None, path: str) -> Response | None:
        """The 400 for a request for `path` whose Host header is `header`; None when it may
        go on."""
        if self.any or path in PROBE_PATHS:
            return None
        host = header.decode("latin-1") if header is not None else None
        if host is not None and host_name(host) in self.names:
            return None
        shown = repr(host[:100]) if host is not None else "missing"
        return error_response(
            400,
            f"the Host header ({shown}) is not a name this service answers to; set "
            "PERCEPTRON_PUBLIC_HOST (or PERCEPTRON_ALLOWED_HOSTS) to the name clients use",
            "host_not_allowed",
        )
