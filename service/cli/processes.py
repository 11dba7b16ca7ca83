"""Serving from several processes (`PERCEPTRON_WORKERS` > 1): uvicorn's own supervisor binds the
socket once and spawns that many worker processes that accept from it, restarts one that dies,
and stops them all on SIGINT or SIGTERM.

Each worker is a whole service: `create_worker_app` builds the app from the environment's
settings, so every process loads its own models (spawned, never forked: TensorFlow hangs in a
forked child), runs its own batcher and its own registry poller. What the processes share lives
on disk: pins (`<models>/<name>/pin.json`) and new versions are seen by every registry at its
next scan (`PERCEPTRON_POLL_INTERVAL_S`); the job database and queue are shared already.
Prometheus metrics go through prometheus_client's multiprocess mode: one private folder of
memory-mapped files per run, made empty at start, a process's live gauges removed when it exits,
and `/metrics` sums them (service/metrics.py).

uvicorn pickles its configuration into each spawned worker, so the protocol class is a module
attribute (`WorkerHttpProtocol`) rather than one built at run time, and each worker binds it to
its settings and its app's event-stream gatekeeper when it builds the app.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.http.connections import ConnectionLimits, GuardedHttpToolsProtocol
from service.logs import configure_logging
from service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1
WORKER_HEALTHCHECK_S = 30
"""How long a worker may take to answer the supervisor's ping before it counts as hung and is
replaced: loading TensorFlow and the models on a busy 2-core machine holds the interpreter for
seconds at a time (uvicorn's default is 5 s)."""


class WorkerHttpProtocol(GuardedHttpToolsProtocol):
    """The connection limits of service/http/connections.py, importable by name in every worker;
    `create_worker_app` sets `limits` and `gatekeeper` in each process."""


def _die_with_supervisor() -> None:
    """Linux: SIGTERM for this worker when its supervisor dies without stopping it (kill -9),
    else the worker would go on serving the port with no one left to stop it.

    The supervisor's pid comes from multiprocessing, which spawned this process, not from
    `getppid()` at some later moment: a supervisor that is PID 1 (a container started without
    an init, as Kubernetes and a plain `docker run` do) is alive, while an orphan is adopted
    by PID 1 or a subreaper, so only a parent other than the one that spawned us means it died."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:  # not spawned by a supervisor: nothing to watch
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: no such safety net
        return
    if os.getppid() != parent.pid:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def create_worker_app() -> FastAPI:
    """uvicorn's app factory in each worker process: the service built from the environment,
    with `WorkerHttpProtocol` bound to its settings."""
    from service.app import create_app
    from service.routes.jobs import event_stream_gatekeeper

    _die_with_supervisor()
    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    app = create_app(settings)
    WorkerHttpProtocol.bind(ConnectionLimits.from_settings(settings), event_stream_gatekeeper(app))
    return app


def prepare_metrics_dir() -> tuple[Path, bool]:
    """The multiprocess metrics folder, empty: `PROMETHEUS_MULTIPROC_DIR` if set (its old files
    removed: counts of a previous run would otherwise be added to this one's), else a new
    private temporary folder. Returns the folder and whether it is ours to delete at the end."""
    given = os.environ.get(METRICS_DIR_VARIABLE)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return folder, False
    folder = Path(tempfile.mkdtemp(prefix="perceptron-metrics-"))
    os.environ[METRICS_DIR_VARIABLE] = str(folder)
    return folder, True


def serve_in_processes(settings: Settings, options: dict[str, Any], sock: socket.socket) -> None:
    """Runs `settings.workers` worker processes under uvicorn's supervisor, accepting from the
    listening `sock`, until SIGINT or SIGTERM. `options` are cli.uvicorn_options without the
    protocol (set here)."""
    import uvicorn
    from prometheus_client import multiprocess
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, also removing a worker's live gauges when it is replaced
        (prometheus_client asks the parent to call mark_process_dead for each exited child)."""

        def keep_subprocess_alive(self) -> None:
            before = {process.pid for process in self.processes}
            super().keep_subprocess_alive()
            self._forget_replaced(before)

        def restart_all(self) -> None:  # on SIGHUP
            before = {process.pid for process in self.processes}
            super().restart_all()
            self._forget_replaced(before)

        def _forget_replaced(self, before: set[int | None]) -> None:
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:
                    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]

    folder, ours = prepare_metrics_dir()
    config = uvicorn.Config(
        "service.cli.processes:create_worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=WorkerHttpProtocol,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        **options,
    )
    log.info("serving with %d worker processes (metrics in %s)", settings.workers, folder)
    supervisor = Supervisor(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        for process in supervisor.processes:
            if process.pid is not None:
                multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
        if ours:
            shutil.rmtree(folder, ignore_errors=True)
