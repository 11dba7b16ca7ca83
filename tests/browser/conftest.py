"""Fixtures of the browser tests: the real service (`python -m service run`: the API and a
training worker) on a free loopback port with a private state folder, which it seeds with real
models as it starts, and headless Chromium from Debian driven by Playwright.

The models are the bundled ones (as git has them) unless `WEB_TEST_MODELS_DIR` names another
folder of `<name>/<version>/` SavedModels.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import REPO

MODELS_ENV = "WEB_TEST_MODELS_DIR"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / "tests" / "artifacts"
ADMIN_TOKEN = "browser-tests-admin-token"
"""The service under test requires it, so the page must send what its token field holds."""
READY_TIMEOUT_S = 240.0
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class LiveService:
    url: str
    models_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _models_source(bundled_models: Path) -> Path:
    source = Path(os.environ.get(MODELS_ENV) or bundled_models)
    missing = [
        name for name in ("digit", "mpg") if not any(source.glob(f"{name}/*/saved_model.pb"))
    ]
    if missing:
        pytest.fail(
            f"{source} holds no version of {' or '.join(missing)}; the browser tests need real "
            f"trained models there (or set {MODELS_ENV} to a folder that has them)"
        )
    return source


def _service_environment(root: Path, models: Path, port: int) -> dict[str, str]:
    # Only our settings: a PERCEPTRON_* variable from the caller's shell (a database or Redis
    # URL, say) must not point the service under test at shared state.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        TF_CPP_MIN_LOG_LEVEL="2",
        PERCEPTRON_HOST="127.0.0.1",
        PERCEPTRON_PORT=str(port),
        PERCEPTRON_BUNDLED_MODELS_DIR=str(models),
        PERCEPTRON_STATE_DIR=str(root / "var"),
        PERCEPTRON_CACHE_DIR=str(root / "cache"),
        PERCEPTRON_ADMIN_TOKEN=ADMIN_TOKEN,
        PERCEPTRON_POLL_INTERVAL_S="0.5",
        PERCEPTRON_LOG_JSON="false",
        # Two cores: leave one to the worker and the browser.
        PERCEPTRON_TF_INTRA_OP_THREADS="1",
    )
    return env


def _wait_until_ready(service: LiveService) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            pytest.fail(
                f"the service exited with {service.process.returncode} before it was ready:\n"
                + service.log_tail()
            )
        try:
            with urllib.request.urlopen(service.url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the service was not ready within {READY_TIMEOUT_S:.0f} s:\n{service.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # `service run` stops its worker on the way out
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own process group: only what we started
            process.wait(timeout=10)


@contextlib.contextmanager
def running_service(root: Path, models: Path, **settings: str) -> Iterator[LiveService]:
    """`python -m service run` with its state under `root`, seeded from `models`, with the
    environment's settings replaced by `settings` (NAME=value; an empty value removes one)."""
    port = _free_port()
    env = _service_environment(root, models, port)
    for name, value in settings.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    log_path = root / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "run"],
            cwd=root,  # no stray .env from the working folder
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = LiveService(f"http://127.0.0.1:{port}", root / "var" / "models", log_path, process)
    try:
        _wait_until_ready(service)
        yield service
    finally:
        _stop(process)
        shutil.copyfile(log_path, ARTIFACTS / f"{root.name}.log")


@pytest.fixture(scope="session")
def live_service(
    tmp_path_factory: pytest.TempPathFactory, bundled_models: Path
) -> Iterator[LiveService]:
    """`python -m service run` over the real models, with a private state folder (models, job
    database and queue), requiring ADMIN_TOKEN for admin actions."""
    root = tmp_path_factory.mktemp("web-service")
    with running_service(root, _models_source(bundled_models)) as service:
        yield service


# Package scope, not session: Playwright's sync API keeps an event loop running on this thread
# while it is open, and the asyncio tests that run after this package need the thread back.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class PageErrors:
    """Uncaught exceptions and console errors of a page; tests end by asserting there are none."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("pageerror", lambda error: self.messages.append(f"uncaught: {error}"))
        page.on("console", self._console)

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        # A 4xx answer the page shows as a message is logged by Chromium too; that is not a bug.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.messages.append(f"console: {message.text}")


def _open_context(browser: Browser, live_service: LiveService, viewport: dict[str, int], **options):  # type: ignore[no-untyped-def]
    context: BrowserContext = browser.new_context(
        base_url=live_service.url, viewport=viewport, **options
    )
    context.set_default_timeout(30_000)
    return context


@pytest.fixture
def page(browser: Browser, live_service: LiveService) -> Iterator[Page]:
    """A desktop-sized page; the test fails if the page throws or logs an error."""
    context = _open_context(browser, live_service, DESKTOP)
    page = context.new_page()
    errors = PageErrors(page)
    yield page
    context.close()
    assert not errors.messages, errors.messages


@pytest.fixture
def phone_page(browser: Browser, live_service: LiveService) -> Iterator[Page]:
    """A phone-sized page with touch input."""
    context = _open_context(browser, live_service, PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = PageErrors(page)
    yield page
    context.close()
    assert not errors.messages, errors.messages


def open_panel(page: Page, panel: str) -> None:
    """Loads the page on `panel` and waits until its forms are built."""
    page.goto(f"/#{panel}")
    page.wait_for_selector("body[data-ready=true]")


def screenshot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"web-{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def enter_admin_token(page: Page, token: str = ADMIN_TOKEN) -> None:
    page.click("#tab-models")
    page.fill("#admin-token", token)
