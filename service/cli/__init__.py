"""`python -m service api|worker|run|train|migrate`: the entry points `make run` and the
container use (installed as `.venv/bin/perceptron` by `make run` and `make test`).

* `api`: the HTTP service (uvicorn; `PERCEPTRON_WORKERS` processes, service/cli/processes.py;
  models load in each process's lifespan);
* `worker`: a training worker consuming the job queue;
* `run`: both, the worker as a child process, for a single machine (what `make run` starts);
* `train digit|mpg [options]`: `python -m training`, the same options;
* `healthcheck`: the container's HEALTHCHECK for whichever of these runs in it;
* `migrate`: brings the job database to the newest schema and says which revision it is at
  (`api`, `worker` and `run` do the same when they start);
* `reset-models`: returns the models folder to the bundled versions (trained versions and pins
  deleted, after a question unless `--yes`).

`api`, `worker` and `run` first copy the bundled versions the models folder lacks
(training/bundled.py); `api` and `run` open their port before anything slow starts, so a port in
use is one line naming the setting to change.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

from service.cli import healthcheck
from service.cli.listening import BACKLOG, CannotListen, announce_when_ready, open_listening_socket
from service.logs import configure_logging
from service.settings import Settings
from training.settings import describe_settings_error
from training.tensorflow_env import quiet_tensorflow

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "access_log": False,  # our own middleware logs each request, with its id and latency
    "server_header": False,
    "timeout_graceful_shutdown": 10,
    "timeout_keep_alive": 15,
    # X-Forwarded-For is read by the app, from the proxies in trusted_proxies only
    # (service/http/client_address.py).
    "proxy_headers": False,
}
"""How uvicorn runs an app (the benchmark's bare and naive apps run under the same)."""


def uvicorn_options(settings: Settings, app: FastAPI | None = None) -> dict[str, Any]:
    """UVICORN_OPTIONS plus the service's connection limits (service/http/connections.py), and the
    event streams' caps checked there when the options are for the service's `app`."""
    from service.http.connections import ConnectionLimits, guarded_protocol

    gatekeeper = None
    if app is not None:
        # Imported only here: the jobs routes import TensorFlow (through training.cost), which
        # the supervisor of several worker processes has no use for.
        from service.routes.jobs import event_stream_gatekeeper

        gatekeeper = event_stream_gatekeeper(app)
    return {
        **UVICORN_OPTIONS,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "http": guarded_protocol(ConnectionLimits.from_settings(settings), gatekeeper),
        "backlog": BACKLOG,
    }


def serve_api(settings: Settings, sock: socket.socket) -> None:
    """Serves on `sock` until SIGINT or SIGTERM: in this process when `settings.workers` is 1,
    else in that many worker processes under a supervisor (service/cli/processes.py)."""
    announce_when_ready(settings)
    if settings.workers > 1:
        from service.cli.processes import serve_in_processes

        options = uvicorn_options(settings)
        del options["http"]  # each worker binds its own (service.cli.processes.WorkerHttpProtocol)
        serve_in_processes(settings, options, sock)
        return

    import uvicorn

    from service.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, **uvicorn_options(settings, app)
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:  # the application's start-up failed (it logged why)
        raise SystemExit(3)


WORKER_EXIT_MARGIN_S = 5
"""Time past worker_stop_timeout_s for the worker child to hand back its job and exit."""


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM is how containers and service managers stop the service: a clean stop, exit 0,
    # as `api` exits (a Kubernetes Job or `docker wait` would read 143 as a failure).
    raise SystemExit(0)


def _die_with_parent() -> None:
    """In the worker child (Linux): get SIGTERM if `run` dies without cleaning up (kill -9)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def run_both(settings: Settings, sock: socket.socket) -> int:
    """Starts a worker child process, serves the API, and stops the worker on the way out,
    whether the API stops on Ctrl-C or SIGTERM (uvicorn re-raises the signal after its own
    shutdown; the handler installed here turns that into a normal exit)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    worker = subprocess.Popen(
        [sys.executable, "-m", "service", "worker"],
        env=os.environ.copy(),
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    log.info("training worker started (pid %d)", worker.pid)
    try:
        serve_api(settings, sock)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # its running job goes back to the queue
            try:
                worker.wait(timeout=settings.worker_stop_timeout_s + WORKER_EXIT_MARGIN_S)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0


def migrate_job_database(settings: Settings) -> int:
    from service.database import migrate
    from service.database.engine import make_engine

    engine = make_engine(settings.job_database_url)
    try:
        migrate.upgrade(engine)
        # stdout, not the log: this is the answer a person or a deploy script asked for.
        sys.stdout.write(f"job database at revision {migrate.current(engine)} (newest)\n")
    finally:
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # Ctrl-C before the server's own signal handling is in place
        return 130


def _main(argv: list[str]) -> int:
    quiet_tensorflow()
    if argv[:1] == ["train"]:
        from training.cli import main as train

        return train(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        choices=("api", "worker", "run", "train", "healthcheck", "migrate", "reset-models"),
    )
    parser.add_argument(
        "--yes", action="store_true", help="reset-models: do it without asking first"
    )
    options = parser.parse_args(argv)
    if options.command == "healthcheck":
        return healthcheck.main()
    try:
        settings = Settings()
    except ValidationError as exc:
        # A person reads this at start-up: one line naming what to set, not a traceback.
        sys.stderr.write(f"{parser.prog}: {describe_settings_error(exc)}\n")
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if options.command == "migrate":
        return migrate_job_database(settings)
    if options.command == "reset-models":
        from service.cli.models_folder import reset_models

        return reset_models(settings, assume_yes=options.yes)
    sock = None
    if options.command in ("api", "run"):
        try:
            sock = open_listening_socket(settings)
        except CannotListen as exc:
            return _cannot_start(parser.prog, str(exc))
    from service.cli.models_folder import CannotPrepare, prepare_models_dir

    try:
        prepare_models_dir(settings)
    except CannotPrepare as exc:
        return _cannot_start(parser.prog, str(exc))
    if options.command == "worker":
        from service.jobs.worker import run_worker

        healthcheck.announce("worker")
        run_worker(settings)
        return 0
    assert sock is not None
    healthcheck.announce("api")  # in `run`, the worker child announces itself
    if options.command == "api":
        serve_api(settings, sock)
        _exit_at_once(0)
    _exit_at_once(run_both(settings, sock))


def _cannot_start(prog: str, reason: str) -> int:
    sys.stderr.write(f"{prog}: cannot start: {reason}\n")
    return 2


def _exit_at_once(code: int) -> NoReturn:
    """Ends a process that served the API, once the app has shut down (connections closed, the
    worker child stopped): the interpreter's own finalisation would then spend seconds freeing
    TensorFlow's objects (6 to 9 s measured on 2 cores), which counts against a container's stop
    timeout. Elsewhere uvicorn's re-raised SIGTERM ends the process the same way; as PID 1 the
    kernel ignores it."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
