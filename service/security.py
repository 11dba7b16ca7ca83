"""Who may change what the service does.

Creating and cancelling jobs and pinning versions need the admin token (`Authorization: Bearer
<token>`, compared in constant time). With no token configured, only loopback clients may use
them: a service on a laptop works out of the box and one on a network is closed by default.
Predictions are open unless `predictions_require_token` is set.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from service.errors import Forbidden, Unauthorized
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
    """Raises 401/403 unless the request may change what the service does."""
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


def check_prediction_access(request: Request, settings: Settings) -> None:
    """Predictions are open unless `predictions_require_token` is set (then as for admin)."""
    if settings.predictions_require_token:
        check_admin(request, settings)


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
