"""`python -m service healthcheck`: the image's HEALTHCHECK, for whichever role the container runs.

One image runs the API (`python -m service api`), a training worker (`... worker`) or both
(`... run`), and a HEALTHCHECK cannot see the command the container was started with. So each
role leaves a note in the container's own temporary folder as it starts (its pid), and the check
tests every role whose process is alive: the API must answer GET /readyz with 200 (every model
serves), a worker must reach its job queue. Exit 0 when all pass; 1 with one line saying why not
(Docker shows it in `docker inspect`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from service.settings import Settings

ROLES = ("api", "worker")
READINESS_PATH = "/readyz"
TIMEOUT_S = 4.0


def role_file(role: str) -> Path:
    # The temporary folder is the container's own; the state folder is a volume workers share.
    return Path(tempfile.gettempdir()) / f"perceptron-{role}.pid"


def announce(role: str) -> None:
    """Records that this process serves `role` (called by `python -m service <role>`)."""
    path = role_file(role)
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        temp.write_text(str(os.getpid()), encoding="utf-8")
        temp.replace(path)
    except OSError:
        pass  # a read-only /tmp costs the healthcheck, never the service


def running_roles() -> list[str]:
    """The roles whose announcing process is still alive."""
    alive = []
    for role in ROLES:
        try:
            pid = int(role_file(role).read_text(encoding="utf-8").strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        alive.append(role)
    return alive


def check_api(settings: Settings) -> str | None:
    """None when the API on this container's port answers /readyz with 200; else why not."""
    url = f"http://127.0.0.1:{settings.port}{READINESS_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        return f"api: {READINESS_PATH} answered {exc.code} (a model is not serving yet)"
    except (OSError, ValueError) as exc:
        return f"api: {url} did not answer ({exc})"


def check_worker(settings: Settings) -> str | None:
    """None when the job queue the worker consumes answers; else why not."""
    from service.jobs.queue import build_queue

    try:
        build_queue(settings).pending()
    except Exception as exc:  # any failure to reach the queue is the answer, not a crash
        return f"worker: the job queue does not answer ({type(exc).__name__}: {exc})"
    return None


def main() -> int:
    roles = running_roles()
    if not roles:
        sys.stdout.write("unhealthy: no perceptron api or worker has started here yet\n")
        return 1
    settings = Settings()
    checks = {"api": check_api, "worker": check_worker}
    problems = [problem for role in roles if (problem := checks[role](settings))]
    if problems:
        sys.stdout.write("unhealthy: " + "; ".join(problems) + "\n")
        return 1
    sys.stdout.write("healthy: " + ", ".join(roles) + "\n")
    return 0
