"""The log as people and collectors read it: plain lines in a terminal, JSON lines elsewhere,
either on request; one line saying where to open the service; no start-up chatter."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.logs import configure_logging, wants_json
from tests.conftest import REPO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_unless_a_terminal_reads_it_or_a_setting_says() -> None:
    assert wants_json(None, io.StringIO()) is True
    assert wants_json(None, Terminal()) is False
    assert wants_json(True, Terminal()) is True
    assert wants_json(False, io.StringIO()) is False


def _lines(json_lines: bool | None, monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> str:
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO", json_lines=json_lines)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://127.0.0.1:8000",
        extra={"color_message": "Uvicorn running on \x1b[1mhttp://127.0.0.1:8000\x1b[0m"},
    )
    logging.getLogger("huey.consumer").info("Scheduler runs every 1 second(s).")
    logging.getLogger("service.registry").info("serving %s version %d", "digit", 1)
    logging.getLogger("service.jobs").warning("job %s failed", "4f1c")
    logging.getLogger("service.access").info(
        "%s %s %d", "GET", "/digit", 200, extra={"duration_ms": 3.25, "status": 200}
    )
    return stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_a_terminal_gets_short_plain_lines_without_start_up_chatter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _lines(None, monkeypatch, Terminal()).splitlines()
    assert len(lines) == 3, lines
    assert [line.split(" ", 1)[1] for line in lines] == [
        "serving digit version 1",
        "WARNING job 4f1c failed",
        "GET /digit 200 (3.25 ms)",
    ]
    assert all(time.strptime(line.split(" ", 1)[0], "%H:%M:%S") for line in lines)


@pytest.mark.usefixtures("restore_logging")
def test_elsewhere_every_record_is_a_json_line(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [json.loads(line) for line in _lines(None, monkeypatch, io.StringIO()).splitlines()]
    assert records[0]["message"] == "Uvicorn running on http://127.0.0.1:8000"
    assert "color_message" not in records[0]  # uvicorn's coloured copy of the message
    assert len(records) == 5
    assert records[-1]["duration_ms"] == 3.25


def test_probes_that_succeed_are_logged_at_debug(
    client_factory, settings_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No model anywhere: /healthz answers 200 (logged at DEBUG), /readyz 503 (at INFO)."""
    client = client_factory(settings_factory(models_dir=tmp_path / "empty"))
    with caplog.at_level(logging.DEBUG, logger="service.access"):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
    levels = {r.getMessage(): r.levelno for r in caplog.records if r.name == "service.access"}
    assert levels == {"GET /healthz 200": logging.DEBUG, "GET /readyz 503": logging.INFO}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_make_run_in_a_terminal_says_where_to_open_it_and_nothing_of_tensorflow(
    tmp_path: Path, bundled_models: Path
) -> None:
    """`python -m service api` with a terminal for its output: plain lines, the bundled models
    copied, one "open" line once ready; no TensorFlow banner, no uvicorn address line."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERCEPTRON_", "TF_CPP"))}
    env.update(
        PYTHONPATH=str(REPO),
        PERCEPTRON_PORT=str(port),
        PERCEPTRON_WORKERS="1",
        PERCEPTRON_STATE_DIR=str(tmp_path / "var"),
        PERCEPTRON_BUNDLED_MODELS_DIR=str(bundled_models),
    )
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "api"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    wanted = f"ready: open http://127.0.0.1:{port}/ in a browser".encode()
    try:
        deadline = time.monotonic() + 240
        while wanted not in output and time.monotonic() < deadline:
            if select.select([controller], [], [], 1.0)[0]:
                try:
                    output += os.read(controller, 65536)
                except OSError:  # the process closed the terminal: it has exited
                    break
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        os.close(controller)
    text = output.decode(errors="replace")
    assert wanted.decode() in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert not [line for line in lines if line.lstrip().startswith("{")], text
    assert f"copied the bundled versions digit 2, mpg 2 into {tmp_path / 'var' / 'models'}" in text
    for noise in ("absl::InitializeLog", "oneDNN", "This TensorFlow binary", "Uvicorn running"):
        assert noise not in text, text
    assert "GET /readyz" not in text  # the announcement's own request is not logged
