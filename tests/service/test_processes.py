"""`PERCEPTRON_WORKERS=2`: two real worker processes behind one port, with one metrics view and
one served version between them (service/cli/processes.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import REPO
from tests.service.test_bad_input import GOOD_CAR
from tests.service.test_registry import add_version

pytestmark = pytest.mark.slow

WORKERS = 2
MPG_ANSWERED = {"method": "POST", "route": "/mpg", "status": "200"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    metrics_dir: Path
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics(self) -> str:
        return httpx.get(self.url("/metrics")).text

    def served_versions(self, model: str) -> dict[str, float]:
        """pid -> the version that process serves, from the served-version gauge."""
        pattern = rf'perceptron_model_served_version\{{model="{model}",pid="(\d+)"\}} (\S+)'
        return {pid: float(value) for pid, value in re.findall(pattern, self.metrics())}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, service: Service) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        assert service.process.poll() is None, service.log.read_text()[-3000:]
        time.sleep(0.25)  # the polling interval of a wait with a deadline
    raise AssertionError(f"{what} not within {timeout} s:\n{service.log.read_text()[-3000:]}")


@pytest.fixture
def service(models_dir: Path, tmp_path: Path) -> Iterator[Service]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A previous run's counts, which must not be added to this run's.
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    port = free_port()
    log = tmp_path / "api.log"
    env = {
        **os.environ,
        "PERCEPTRON_MODELS_DIR": str(models_dir),
        "PERCEPTRON_STATE_DIR": str(tmp_path / "var"),
        "PERCEPTRON_PORT": str(port),
        "PERCEPTRON_WORKERS": str(WORKERS),
        "PERCEPTRON_POLL_INTERVAL_S": "0.5",
        "PERCEPTRON_LOG_JSON": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "api"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    running = Service(process, port, metrics_dir, log)
    try:
        wait_for(
            lambda: all(len(running.served_versions(m)) == WORKERS for m in ("digit", "mpg")),
            180,
            f"{WORKERS} processes serving both models",
            running,
        )
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def post_cars(service: Service, count: int) -> list[httpx.Response]:
    """`count` /mpg requests from 8 threads, each on its own connection (the kernel hands new
    connections to whichever process accepts first)."""

    def one(_: int) -> httpx.Response:
        with httpx.Client() as client:
            return client.post(service.url("/mpg"), json=GOOD_CAR)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def mpg_answers_by_process(metrics_dir: Path) -> dict[int, float]:
    """pid -> /mpg 200 answers that process counted, read from its own metrics file."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)
            if sample == "perceptron_http_requests_total" and labels == MPG_ANSWERED:
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def mpg_answers_in_metrics(service: Service) -> float:
    found = re.search(
        r'perceptron_http_requests_total\{method="POST",route="/mpg",status="200"\} (\S+)',
        service.metrics(),
    )
    return float(found.group(1)) if found else 0.0


def test_every_worker_process_serves_and_metrics_add_them_up(service: Service) -> None:
    sent = 0
    by_process: dict[int, float] = {}
    deadline = time.monotonic() + 60
    while len(by_process) < WORKERS and time.monotonic() < deadline:
        answers = post_cars(service, 80)
        assert {r.status_code for r in answers} == {200}, answers[0].text
        sent += len(answers)
        by_process = mpg_answers_by_process(service.metrics_dir)
    assert len(by_process) == WORKERS, f"only {by_process} answered {sent} requests"
    assert all(count > 0 for count in by_process.values())
    assert sum(by_process.values()) == sent
    # /metrics, answered by one process, counts every process's answers (and no stale file).
    assert mpg_answers_in_metrics(service) == sent


def test_a_served_version_change_reaches_every_worker(service: Service, models_dir) -> None:
    add_version(models_dir, "mpg", 2)
    wait_for(
        lambda: set(service.served_versions("mpg").values()) == {2.0},
        30,
        "version 2 served by every process",
        service,
    )
    pinned = httpx.put(service.url("/models/mpg/served-version"), json={"version": 1})
    assert pinned.status_code == 200, pinned.text
    wait_for(
        lambda: set(service.served_versions("mpg").values()) == {1.0},
        30,
        "the pin to version 1 applied by every process",
        service,
    )
    answers = post_cars(service, 40)
    assert {r.json()["model_version"] for r in answers} == {1}
    unpinned = httpx.delete(service.url("/models/mpg/served-version"))
    assert unpinned.status_code == 200, unpinned.text
    wait_for(
        lambda: set(service.served_versions("mpg").values()) == {2.0},
        30,
        "the unpin (back to version 2) applied by every process",
        service,
    )


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()  # a zombie has exited all the same
    except OSError:
        return False


def test_sigterm_stops_every_worker_process(service: Service) -> None:
    workers = [int(pid) for pid in service.served_versions("mpg")]
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=60) == 0
    for pid in workers:
        assert not alive(pid), f"worker {pid} outlived its supervisor"
    assert not list(service.metrics_dir.glob("gauge_live*_*.db"))  # marked dead


def test_worker_processes_die_with_a_killed_supervisor(service: Service) -> None:
    workers = [int(pid) for pid in service.served_versions("mpg")]
    service.process.kill()  # no chance to stop its workers itself
    service.process.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)  # the polling interval of a wait with a deadline
    assert not any(alive(pid) for pid in workers), "workers outlived their killed supervisor"


def test_each_worker_sizes_tensorflow_to_its_share_of_the_cores(settings_factory) -> None:
    from service.app import tensorflow_threads
    from service.settings import available_cores

    share = max(1, available_cores() // 2)
    assert tensorflow_threads(settings_factory(workers=1)) == (0, 0)  # TensorFlow's own choice
    assert tensorflow_threads(settings_factory(workers=2)) == (share, share)
    assert tensorflow_threads(settings_factory(workers=2, tf_intra_op_threads=3)) == (3, share)
