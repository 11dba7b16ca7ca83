"""Which names the service answers to, and which web origins may administer it.

A page on another site can point a DNS name it controls at 127.0.0.1 and have the user's
browser call the service as if it were its own (DNS rebinding): the browser then sends that
name as Host. Checking Host against the names the service is known by stops it. Starlette's
TrustedHostMiddleware answers in plain text and cuts `[::1]:8000` at the first colon, hence
`HostCheck`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response

from service.http.error_handlers import error_response
from service.settings import Settings

ANY = "*"


def host_name(host_header: str) -> str:
    """The name in a Host header (or an Origin's authority), without the port, lower case;
    IPv6 addresses keep their brackets."""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    return value.partition(":")[0]


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The names accepted as Host: allowed_hosts and public_host."""
    names = {host_name(name) for name in settings.allowed_hosts}
    if settings.public_host:
        names.add(host_name(settings.public_host))
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
    public = settings.public_host
    return public is not None and host_name(parts.netloc) == host_name(public)


class HostCheck:
    """Refuses, with 400 in the service's error shape, a request whose Host is not an allowed
    name (a missing Host included); `service.http.middleware.RequestGuardMiddleware` asks it before
    any route sees the request."""

    def __init__(self, settings: Settings) -> None:
        self.names = allowed_hosts(settings)
        self.any = ANY in self.names

    def refusal(self, header: bytes | None) -> Response | None:
        """The 400 for a request whose Host header is `header`; None when it may go on."""
        if self.any:
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
