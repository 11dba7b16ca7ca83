"""The service as PID 1, the way Kubernetes and a plain `docker run` start the image (no init in
front): each role runs in its own PID namespace (`unshare`), where it is process 1. It must
become ready, answer, and exit cleanly on SIGTERM within a pod's grace period; and the
API's worker processes must still die with a supervisor killed by SIGKILL when an init is in
front of it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_service import LiveService, free_port, service_env
from tests.service.test_bad_input import GOOD_CAR

GRACE_PERIOD_S = 30
"""Kubernetes' default terminationGracePeriodSeconds, which deploy/kubernetes keeps for the API."""
POD_ADDRESS = "10.244.1.7"
"""What a kubelet sends as Host: the pod's address and port."""


def own_pid_namespace() -> list[str]:
    """The `unshare` prefix that runs a command as PID 1 of a new PID namespace (with its own
    /proc): as root directly, otherwise inside a user namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is not installed; apt-get install util-linux")
    prefix = [unshare, "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    return prefix


def namespace_init(launcher: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """The host pid of the process `unshare` forked into the new namespace, checked to be PID 1
    there."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    while time.monotonic() < deadline:
        found = children.read_text().split() if children.exists() else []
        if found:
            pid = int(found[0])
            status = Path(f"/proc/{pid}/status").read_text()
            namespace_pids = next(line for line in status.splitlines() if line.startswith("NSpid"))
            assert namespace_pids.split()[-1] == "1", namespace_pids
            return pid
        time.sleep(0.05)  # the polling interval of a wait with a deadline
    raise AssertionError("unshare started no process")


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def stop_as_runtime(service: LiveService, init: int) -> float:
    """SIGTERM to PID 1, as a container runtime sends it; returns how long the exit took."""
    below = descendants(init)
    started = time.monotonic()
    os.kill(init, signal.SIGTERM)
    code = service.process.wait(timeout=GRACE_PERIOD_S + 30)
    took = time.monotonic() - started
    assert code == 0, f"exit code {code}:\n{service.output()}"
    assert not [pid for pid in [init, *below] if alive(pid)], "processes outlived PID 1"
    return took


@pytest.fixture
def as_pid_one(tmp_path: Path) -> Iterator[list[LiveService]]:
    started: list[LiveService] = []
    yield started
    for service in started:
        service.stop(signal.SIGKILL)  # unshare --kill-child takes the namespace with it


pytestmark = pytest.mark.slow


def test_the_api_with_worker_processes_as_pid_one_serves_and_stops_on_sigterm(
    as_pid_one: list[LiveService], tmp_path: Path
) -> None:
    """Several worker processes under uvicorn's supervisor, which is PID 1 (one process, as
    deploy/kubernetes runs it, is covered by `run` below)."""
    port = free_port()
    env = service_env(tmp_path, port, workers="2")
    api = LiveService("api", env, tmp_path / "api.log", prefix=own_pid_namespace())
    as_pid_one.append(api)
    init = namespace_init(api.process)
    # The kubelet's readiness probe: the pod's address as Host.
    api.wait_ready(host=f"{POD_ADDRESS}:{port}")
    answer = httpx.post(api.url("/mpg"), json=GOOD_CAR, timeout=30)
    assert answer.status_code == 200, answer.text
    assert "Shutting down" not in api.output(tail=1_000_000), "a worker stopped while serving"
    took = stop_as_runtime(api, init)
    assert took < GRACE_PERIOD_S, f"took {took:.1f} s to stop"


def test_a_training_worker_as_pid_one_stops_on_sigterm(
    as_pid_one: list[LiveService], tmp_path: Path
) -> None:
    env = service_env(tmp_path, free_port())
    worker = LiveService("worker", env, tmp_path / "worker.log", prefix=own_pid_namespace())
    as_pid_one.append(worker)
    init = namespace_init(worker.process)
    worker.wait_for_output("training worker consuming")
    time.sleep(2)  # the consumer's worker process up and polling the queue
    assert "died" not in worker.output(tail=1_000_000)
    took = stop_as_runtime(worker, init)
    assert took < GRACE_PERIOD_S, f"took {took:.1f} s to stop"


def test_run_as_pid_one_serves_and_stops_api_and_worker(
    as_pid_one: list[LiveService], tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(tmp_path, port, workers="1")
    both = LiveService("run", env, tmp_path / "run.log", prefix=own_pid_namespace())
    as_pid_one.append(both)
    init = namespace_init(both.process)
    both.wait_ready(host=f"{POD_ADDRESS}:{port}")
    both.wait_for_output("training worker consuming")
    assert httpx.post(both.url("/mpg"), json=GOOD_CAR, timeout=30).status_code == 200
    took = stop_as_runtime(both, init)
    assert took < GRACE_PERIOD_S, f"took {took:.1f} s to stop"


def test_api_workers_die_with_a_supervisor_killed_behind_an_init(
    as_pid_one: list[LiveService], tmp_path: Path
) -> None:
    """An init (here a shell) is PID 1 and the supervisor PID 2, as under `docker run --init`
    or compose's `init: true`: SIGKILL to the supervisor must take its workers down (they are
    adopted by PID 1, so their parent is then 1)."""
    port = free_port()
    env = service_env(tmp_path, port, workers="2")
    shell = LiveService(
        "api",
        env,
        tmp_path / "api.log",
        prefix=[*own_pid_namespace(), "sh", "-c", '"$@" & wait; sleep 3600', "init"],
    )
    as_pid_one.append(shell)
    init = namespace_init(shell.process)
    shell.wait_ready()
    (supervisor,) = (int(c) for c in Path(f"/proc/{init}/task/{init}/children").read_text().split())
    workers = descendants(supervisor)
    assert len(workers) >= 2, workers
    os.kill(supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)  # the polling interval of a wait with a deadline
    assert not any(alive(pid) for pid in workers), "workers outlived their killed supervisor"


SPAWN_THEN_MAYBE_DIE = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from pathlib import Path

    def child(report, parent_dies):
        if parent_dies:
            while os.getppid() == multiprocessing.parent_process().pid:
                time.sleep(0.01)
        from service.cli.processes import _die_with_supervisor
        _die_with_supervisor()
        time.sleep(1)  # a SIGTERM the call sent itself arrives meanwhile
        Path(report).write_text("survived")

    if __name__ == "__main__":
        report, parent_dies = sys.argv[1], sys.argv[2] == "dies"
        process = multiprocessing.get_context("spawn").Process(
            target=child, args=(report, parent_dies)
        )
        process.start()
        if parent_dies:
            os._exit(0)  # gone before the child asks for the parent-death signal
        process.join()
    """
)


@pytest.mark.parametrize(
    ("parent", "as_pid_one_too", "survives"),
    [("lives", False, True), ("lives", True, True), ("dies", False, False)],
)
def test_a_worker_takes_only_a_dead_supervisor_for_dead(
    tmp_path: Path, parent: str, as_pid_one_too: bool, survives: bool
) -> None:
    """The check at a worker's start: a supervisor that is PID 1 is alive; one that died
    before the worker asked to be signalled on its death is dead."""
    script = tmp_path / "supervisor.py"
    script.write_text(SPAWN_THEN_MAYBE_DIE)
    report = tmp_path / "report"
    prefix = own_pid_namespace() if as_pid_one_too else []
    subprocess.run(
        [*prefix, sys.executable, str(script), str(report), parent],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
        check=True,
    )
    deadline = time.monotonic() + 10
    while survives and not report.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the polling interval of a wait with a deadline
    if not survives:
        time.sleep(3)  # time for an orphan that wrongly survived to write its report
    assert report.exists() == survives
