"""bench/fleet_servers.py renders the production proxy's own nginx.conf for a local run,
changing only the lines a local run must, each exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import fleet_servers
from bench.fleet_servers import render_nginx_conf


def render(tmp_path: Path, **overrides: object) -> str:
    options: dict[str, object] = {
        "folder": tmp_path,
        "http_port": 8081,
        "https_port": 8444,
        "upstreams": ["127.0.0.1:9001", "127.0.0.1:9002"],
        "certificate": tmp_path / "c.pem",
        "key": tmp_path / "k.pem",
    }
    options.update(overrides)
    return render_nginx_conf(**options)  # type: ignore[arg-type]


def test_only_ports_upstreams_certificate_and_files_change(tmp_path: Path) -> None:
    original = fleet_servers.NGINX_CONF.read_text(encoding="utf-8")
    text = render(tmp_path, bind_address="127.0.0.2")
    assert (
        "server 127.0.0.1:9001 max_fails=0;" in text
        and "server 127.0.0.1:9002 max_fails=0;" in text
    )
    assert "api:8000" not in text and "/run/secrets/" not in text
    assert "listen 127.0.0.1:8081;" in text and "listen 127.0.0.1:8444 ssl;" in text
    assert "http2 on;" in text and "proxy_bind 127.0.0.2;" in text
    assert f"pid {tmp_path / 'nginx.pid'};" in text
    # Every other directive line of the real file is there unchanged.
    kept = [line for line in original.splitlines() if line.strip() and "api:8000" not in line]
    changed = ("listen ", "ssl_certificate", "http {")
    assert all(line in text for line in kept if not line.strip().startswith(changed))


def test_old_nginx_gets_http2_on_the_listen_line(tmp_path: Path) -> None:
    text = render(tmp_path, version=(1, 22, 1))
    assert "listen 127.0.0.1:8444 ssl http2;" in text and "http2 on;" not in text


def test_the_request_rate_can_be_lifted_for_a_load_tool(tmp_path: Path) -> None:
    assert "rate=50r/s" in render(tmp_path)
    assert "rate=100000r/s" in render(tmp_path, requests_per_second=100_000)


def test_a_source_that_changed_shape_fails_loudly(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "nginx.conf"
    source.write_text(
        fleet_servers.NGINX_CONF.read_text(encoding="utf-8").replace("listen 80;", "listen 8080;")
    )
    monkeypatch.setattr(fleet_servers, "NGINX_CONF", source)
    with pytest.raises(ValueError, match="listen 80"):
        render(tmp_path)
