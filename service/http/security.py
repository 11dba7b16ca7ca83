"""Who may change what the service does.

Creating and cancelling jobs and pinning versions need the admin token (`Authorization: Bearer
<token>`, compared in constant time). With no token configured, only loopback clients may use
them: a service on a laptop works out of the box and one on a network is closed by default.
Predictions are open unless `predictions_require_token` is set.

A browser on the administrator's machine is a loopback client for every page it shows, so
admin calls also refuse what only another site's page would send: an Origin other than the
service's own (or one listed in cors_origins), a browser's `Sec-Fetch-Site: cross-site` with
no such Origin, and a body that is not JSON (a form or a `text/plain` "simple" request needs
no CORS preflight; JSON does). Feedback, which anyone may send but which fills the service's
store, refuses the same cross-site requests: any page a person visits could otherwise fill it
through that person's browser.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from service.errors import Forbidden, Unauthorized, UnsupportedMediaType
from service.http.hosts import is_allowed_origin
from service.settings import Settings

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="perceptron"'}


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_admin(request: Request, settings: Settings) -> None:
    """Raises 401/403/415 unless the request may change what the service does."""
    check_same_site(request, settings, "change jobs and versions")
    _check_json_body(request)
    _check_credentials(request, settings)


def is_admin(request: Request, settings: Settings) -> bool:
    """Whether the request carries admin rights (for reads that show more to administrators)."""
    try:
        check_same_site(request, settings, "change jobs and versions")
        _check_credentials(request, settings)
    except (Forbidden, Unauthorized):
        return False
    return True


def check_prediction_access(request: Request, settings: Settings) -> None:
    """Predictions are open unless `predictions_require_token` is set (then as for admin)."""
    if settings.predictions_require_token:
        _check_credentials(request, settings)


def check_same_site(request: Request, settings: Settings, what: str) -> None:
    """403 for a request another site's page sent through a browser: an Origin that is not the
    service's own, the public host's or one listed in cors_origins (`*` does not count), or,
    with no Origin, a browser's `Sec-Fetch-Site: cross-site`. Scripts and curl send neither.
    `what` names what such pages may not do."""
    origin = request.headers.get("origin")
    if origin is not None:
        if not is_allowed_origin(origin, request.headers.get("host"), settings):
            raise Forbidden(
                f"requests from the web origin {origin[:100]!r} are refused here: only the "
                f"service's own pages and the origins in PERCEPTRON_CORS_ORIGINS may {what}"
            )
        return
    if request.headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
        raise Forbidden(
            f"a page on another site sent this request (Sec-Fetch-Site: cross-site): only the "
            f"service's own pages and the origins in PERCEPTRON_CORS_ORIGINS may {what}"
        )


def _check_json_body(request: Request) -> None:
    has_body = request.headers.get("transfer-encoding") is not None or request.headers.get(
        "content-length", "0"
    ).strip() not in ("", "0")
    if not has_body:
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            "admin endpoints take JSON only: send the body with 'Content-Type: application/json'"
        )


def _check_credentials(request: Request, settings: Settings) -> None:
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if token is None:
        client = request.client.host if request.client else None
        if not is_loopback(client):
            raise Forbidden(
                "no admin token is configured, so only loopback clients may change jobs and "
                "versions; set PERCEPTRON_ADMIN_TOKEN to allow remote administration"
            )
        return
    _check_bearer(request, token)


def _check_bearer(request: Request, token: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized(
            "this endpoint needs the admin token: send 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Forbidden("the admin token is wrong")
