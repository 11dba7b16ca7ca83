"""A fleet on this machine: Debian's nginx running the production proxy's configuration in
front of API replicas on loopback ports, training workers, and private Redis and PostgreSQL
servers. Used by `python -m bench fleet`; the proxy also by tests/containers/test_proxy_running.py.

The file nginx runs is the project's own, changed only where a local run must differ: ports,
the upstream servers, the certificate's paths, the files nginx writes (pid, logs, temporary
bodies) in a private folder, and, when given, the address nginx connects to the replicas from
(`proxy_bind`, standing for the proxy's own address in compose or Kubernetes). Each change
replaces exactly one line of the real file, so a change there that a run would no longer
follow fails loudly here instead of being silently ignored. nginx before 1.25.1 (Debian 12 has
1.22) spells `http2 on;` as a `listen` parameter.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "deploy" / "proxy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_version() -> tuple[int, ...]:
    output = subprocess.run(
        [NGINX, "-v"], capture_output=True, text=True, check=True, timeout=30
    ).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    if found is None:
        raise RuntimeError(f"cannot read nginx's version from {output!r}")
    return tuple(int(part) for part in found.groups())


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (openssl); returns (cert, key)."""
    certificate, key = folder / "certificate.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return certificate, key


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, lambda _: replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"deploy/proxy/nginx.conf: expected one line matching {pattern!r}")
    return new


def render_nginx_conf(
    *,
    folder: Path,
    http_port: int,
    https_port: int,
    upstreams: list[str],
    certificate: Path,
    key: Path,
    bind_address: str | None = None,
    version: tuple[int, ...] = (1, 27, 5),
    requests_per_second: int | None = None,
) -> str:
    """deploy/proxy/nginx.conf with the local run's ports, replicas, certificate and files;
    `requests_per_second` replaces the per-address request rate (a load tool is one address)."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    text = f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} notice;\n" + text
    temp = "".join(
        f"\n    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _replace_once(
        text, r"^http \{$", f"http {{\n    access_log {folder / 'access.log'};{temp}"
    )
    found = re.search(r"^\s*server api:8000( [^;]*)?;$", text, flags=re.MULTILINE)
    if found is None:
        raise ValueError("deploy/proxy/nginx.conf: expected one line `server api:8000 ...;`")
    servers = "\n".join(f"        server {address}{found[1] or ''};" for address in upstreams)
    text = _replace_once(text, r"^\s*server api:8000( [^;]*)?;$", servers)
    text = _replace_once(text, r"^\s*listen 80;$", f"        listen 127.0.0.1:{http_port};")
    http2 = " http2" if version < (1, 25, 1) else ""
    text = _replace_once(
        text, r"^\s*listen 443 ssl;$", f"        listen 127.0.0.1:{https_port} ssl{http2};"
    )
    if http2:
        text = _replace_once(text, r"^\s*http2 on;$", "")
    text = _replace_once(
        text, r"^\s*ssl_certificate /run/secrets/tls_certificate;$",
        f"        ssl_certificate {certificate};",
    )  # fmt: skip
    text = _replace_once(
        text, r"^\s*ssl_certificate_key /run/secrets/tls_key;$",
        f"        ssl_certificate_key {key};",
    )  # fmt: skip
    if requests_per_second is not None:
        text = _replace_once(
            text,
            r"^(\s*limit_req_zone \$binary_remote_addr zone=requests:10m) rate=\d+r/s;$",
            "    limit_req_zone $binary_remote_addr zone=requests:10m "
            f"rate={requests_per_second}r/s;",
        )
    if bind_address is not None:
        text = _replace_once(
            text,
            r"^\s*proxy_http_version 1\.1;$",
            f"        proxy_http_version 1.1;\n        proxy_bind {bind_address};",
        )
    return text


@dataclass
class Proxy:
    """A running nginx: HTTPS on `https_port`, the redirect on `http_port`."""

    process: subprocess.Popen[bytes]
    folder: Path
    http_port: int
    https_port: int
    certificate: Path

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"

    def error_log(self) -> str:
        log = self.folder / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self, keep_logs_in: Path | None = None) -> None:
        """Stops nginx (gracefully) and removes its folder, keeping its logs in `keep_logs_in`
        when given."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests in flight
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if keep_logs_in is not None:
            keep_logs_in.mkdir(parents=True, exist_ok=True)
            for log in ("error.log", "access.log", "nginx.conf"):
                if (self.folder / log).exists():
                    shutil.copy(self.folder / log, keep_logs_in / log)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_proxy(
    upstreams: list[str], bind_address: str | None = None, requests_per_second: int | None = None
) -> Proxy:
    """nginx in the foreground on two free loopback ports, in front of `upstreams`
    (host:port each), with a fresh certificate; returns once it accepts TLS connections."""
    if shutil.which(NGINX) is None and not Path(NGINX).exists():
        raise RuntimeError("nginx is not installed: apt-get install -y nginx (make server-deps)")
    # Outside the caller's private temporary folders: nginx's worker processes run as an
    # unprivileged user and must reach the folders they write bodies to.
    folder = Path(tempfile.mkdtemp(prefix="perceptron-nginx-"))
    folder.chmod(0o755)
    certificate, key = make_certificate(folder)
    http_port, https_port = free_port(), free_port()
    conf = folder / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            folder=folder,
            http_port=http_port,
            https_port=https_port,
            upstreams=upstreams,
            certificate=certificate,
            key=key,
            bind_address=bind_address,
            version=nginx_version(),
            requests_per_second=requests_per_second,
        )
    )
    with (folder / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    proxy = Proxy(process, folder, http_port, https_port, certificate)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = (folder / "stderr.log").read_text(errors="replace")
            raise RuntimeError(
                f"nginx exited with {process.returncode}:\n{stderr}{proxy.error_log()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", https_port), timeout=1):
                return proxy
        except OSError:
            time.sleep(0.05)  # the polling interval of a wait with a deadline
    proxy.stop()
    raise RuntimeError(f"nginx did not listen on {https_port} within {START_TIMEOUT_S:g} s")


# -- the rest of the fleet ---------------------------------------------------------------------


@dataclass
class Process:
    """A server this module started, its output in `log`."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, process, log)


def wait_until(condition: Callable[[], bool], what: str, timeout: float, process: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited: {process.log.read_text()[-3000:]}")
        time.sleep(0.2)  # the polling interval of a wait with a deadline
    raise RuntimeError(f"{what} not within {timeout:g} s: {process.log.read_text()[-3000:]}")


def start_redis(folder: Path, password: str) -> tuple[Process, str]:
    """redis-server on a free loopback port, no persistence; returns it and its URL."""
    port = free_port()
    argv = [
        "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
        "--save", "", "--appendonly", "no", "--dir", str(folder),
    ]  # fmt: skip
    server = _spawn("redis", argv, folder / "redis.log")
    url = f"redis://:{password}@127.0.0.1:{port}/0"

    def answers() -> bool:
        import redis

        with redis.Redis.from_url(url) as client:
            return bool(client.ping())

    wait_until(answers, "redis-server", START_TIMEOUT_S, server)
    return server, url


def start_postgres(folder: Path) -> tuple[Process, str]:
    """A throwaway PostgreSQL cluster (Debian's binaries; as the postgres user when run as
    root, since initdb refuses root) on a free port; returns it and a SQLAlchemy URL."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not binaries:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    bin_dir = binaries[-1].parent
    folder.mkdir(parents=True, exist_ok=True)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    subprocess.run(
        [*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True, capture_output=True, timeout=120, cwd=folder,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    server = _spawn(
        "postgres", [*as_owner, str(bin_dir / "postgres"), "-D", str(data), *options.split()],
        folder / "postgres.log",
    )  # fmt: skip
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def answers() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_until(answers, "PostgreSQL", 120, server)
    time.sleep(1)  # accepting connections before it finishes starting answers 'starting up'
    return server, url


def service_environment(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of one `python -m service` process: its own state folder and port,
    JSON logs, the given settings (names without the PERCEPTRON_ prefix)."""
    env = {
        **os.environ,
        "PERCEPTRON_STATE_DIR": str(folder / "var"),
        "PERCEPTRON_LOG_JSON": "true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TMPDIR": str(folder),
    }
    env.update({f"PERCEPTRON_{name.upper()}": value for name, value in settings.items()})
    return env


def start_api(folder: Path, port: int, **settings: str) -> Process:
    folder.mkdir(parents=True, exist_ok=True)
    env = service_environment(folder, port=str(port), workers="1", **settings)
    return _spawn(f"api:{port}", [sys.executable, "-m", "service", "api"], folder / "api.log", env)


def wait_ready(api: Process, port: int, timeout: float = 240) -> None:
    import httpx

    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200,
        f"{api.name} ready",
        timeout,
        api,
    )


def start_worker(folder: Path, **settings: str) -> Process:
    folder.mkdir(parents=True, exist_ok=True)
    env = service_environment(folder, **settings)
    return _spawn(
        f"worker:{folder.name}",
        [sys.executable, "-m", "service", "worker"],
        folder / "worker.log",
        env,
    )
