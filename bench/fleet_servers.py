"""The production proxy on this machine: Debian's nginx running deploy/proxy/nginx.conf, in
front of API replicas on loopback ports, with a self-signed certificate. Used by `python -m
bench fleet` and tests/containers/test_proxy_running.py.

The file nginx runs is the project's own, changed only where a local run must differ: ports,
the upstream servers, the certificate's paths, the files nginx writes (pid, logs, temporary
bodies) in a private folder, and, when given, the address nginx connects to the replicas from
(`proxy_bind`, standing for the proxy's own address in compose or Kubernetes). Each change
replaces exactly one line of the real file, so a change there that a run would no longer
follow fails loudly here instead of being silently ignored. nginx before 1.25.1 (Debian 12 has
1.22) spells `http2 on;` as a `listen` parameter.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
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
) -> str:
    """deploy/proxy/nginx.conf with the local run's ports, replicas, certificate and files."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    text = f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} notice;\n" + text
    temp = "".join(
        f"\n    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _replace_once(
        text, r"^http \{$", f"http {{\n    access_log {folder / 'access.log'};{temp}"
    )
    servers = "\n".join(f"        server {address};" for address in upstreams)
    text = _replace_once(text, r"^\s*server api:8000;$", servers)
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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests in flight
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_proxy(upstreams: list[str], bind_address: str | None = None) -> Proxy:
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
