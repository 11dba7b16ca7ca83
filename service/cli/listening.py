"""The service's listening socket, opened before anything slow starts, and the one line that
tells a person where to point a browser.

The socket is bound and listening before TensorFlow is imported, the models are loaded or the
training worker is started: a port that is taken, a host that is not this machine's or a port
that needs privileges is then reported in one line naming the setting to change, with nothing
else started that would have to be stopped (and print its own traceback on the way out).
Connections that arrive while the models load wait in the kernel's queue, answered as soon as
a process is ready, instead of being refused.
"""

from __future__ import annotations

import errno
import http.client
import logging
import socket
import threading

from service.settings import Settings

log = logging.getLogger(__name__)

BACKLOG = 4096
"""Room in the kernel's accept queue for a burst of connections (a flood of idle sockets)
beside real clients: past it their SYNs wait a second for a retry. Linux caps it at
net.core.somaxconn (4096 by default)."""
READY_WAIT_S = 900.0
"""How long the start-up announcement waits for the first answer (models load in seconds; a
slow disk or a busy machine may take minutes)."""


class CannotListen(Exception):
    """The socket could not be opened; the message says which setting to change."""


def open_listening_socket(settings: Settings) -> socket.socket:
    """A TCP socket bound to settings.host and settings.port, listening, inheritable by the
    worker processes. Raises CannotListen with a one-line explanation."""
    host, port = settings.host, settings.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restart may bind again while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise CannotListen(_explain(exc, host, port)) from None
    sock.set_inheritable(True)
    return sock


def _explain(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use (another program listens on {host}:{port}); set "
            f"PERCEPTRON_PORT to a free port, e.g. PERCEPTRON_PORT={_next(port)} make run"
        )
    if exc.errno == errno.EACCES:
        return (
            f"port {port} needs administrator rights on this machine; set PERCEPTRON_PORT to "
            "1024 or above, e.g. PERCEPTRON_PORT=8000"
        )
    reason = exc.strerror or str(exc)
    return (
        f"cannot listen on {host}:{port} ({reason}); set PERCEPTRON_HOST to an address of "
        "this machine: 127.0.0.1 for this machine only, 0.0.0.0 for every network"
    )


def _next(port: int) -> int:
    return port + 1 if port < 65535 else 8001


def _reachable_host(host: str) -> str:
    """The address to reach a socket bound to `host` from this machine."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host.strip("[]") == "::":
        return "::1"
    return host.strip("[]")


def browser_url(settings: Settings) -> str:
    """The address a person on this machine opens: loopback when every interface listens."""
    host = _reachable_host(settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/"


def announce_when_ready(settings: Settings) -> threading.Thread:
    """Logs one line once the service answers: where to open it, or why it is not ready. One
    request to /readyz, sent at once: it waits in the listening socket's queue until a process
    has loaded its models and accepts it."""
    url = browser_url(settings)

    def wait() -> None:
        connection = http.client.HTTPConnection(
            _reachable_host(settings.host), settings.port, timeout=READY_WAIT_S
        )
        try:
            # A loopback name: one the service answers to whatever PERCEPTRON_HOST is.
            connection.request("GET", "/readyz", headers={"Host": "localhost"})
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            return  # stopped before it answered: nothing to announce
        finally:
            connection.close()
        if status == 200:
            log.info("ready: open %s in a browser (API reference: %sdocs)", url, url)
        else:
            log.warning(
                "the service answers but is not ready (GET /readyz: %d); open %s to see which "
                "model does not serve, and why",
                status,
                url,
            )

    thread = threading.Thread(target=wait, name="ready-announcement", daemon=True)
    thread.start()
    return thread
