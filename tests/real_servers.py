"""Real `redis-server` and PostgreSQL 15 (Debian's binaries) started for the tests on loopback,
on free ports, in temporary folders, and removed after.

`make test` installs both (`make server-deps`, as root or through sudo). When a binary is
missing the tests that need it fail saying what to install: the scale-out tests must never
pass by being skipped.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def _postgres_bin() -> Path:
    """Debian's PostgreSQL binaries (15 on Debian 12), the newest if several are installed."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/15/bin")


POSTGRES_BIN = _postgres_bin()
START_TIMEOUT_S = 60
INSTALL_HINT = "run `make server-deps` (apt-get install redis-server postgresql)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Polls `condition` until it holds; fails the test naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)  # the polling interval of a wait with a deadline


def _binary(path: Path | str) -> str:
    found = str(path) if Path(path).is_file() else shutil.which(str(path))
    if found is None:
        pytest.fail(f"{path} is not installed; {INSTALL_HINT}", pytrace=False)
    return found


class RedisServer:
    """`redis-server` with a password, no persistence, on 127.0.0.1."""

    password = "test-redis-password"

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="perceptron-redis-"))
        options = {
            "--bind": "127.0.0.1",
            "--port": str(self.port),
            "--requirepass": self.password,
            "--save": "",
            "--appendonly": "no",
            "--dir": str(self.folder),
        }
        argv = [_binary("/usr/bin/redis-server")]
        argv += [word for pair in options.items() for word in pair]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, START_TIMEOUT_S, f"redis-server on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(self.url)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"redis-server exited with {self.process.returncode}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except Exception:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1, trusting local connections.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="perceptron-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"no `postgres` user to run PostgreSQL as; {INSTALL_HINT}")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as_owner = [_binary("runuser"), "-u", "postgres", "--"]
        self._run(
            _binary(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        server_options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        # fsync off: a test database need not survive a power cut, and syncing costs seconds.
        self._run(
            _binary(POSTGRES_BIN / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT_S)),
            *("-o", f"{server_options} -c fsync=off", "start"),
        )
        self._databases = 0

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            [*self._as_owner, *argv],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
            cwd=self.folder,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}{log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import sqlalchemy

        self._databases += 1
        name = f"test_{self._databases}"
        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        self._run(_binary(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
