"""Fixtures shared by the whole suite: the data sets, tiny trained models, and the real app.

Tiny models are trained once per session (seconds, on a slice of the real data) so tests that
swap, break or pin versions never touch the bundled models in `models/`.

Every process the tests start serves exactly the models folder it is given: the service's
seeding from the bundled versions is off (PERCEPTRON_BUNDLED_MODELS_DIR empty) unless a test
turns it on, naming the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["PERCEPTRON_BUNDLED_MODELS_DIR"] = ""

REPO = Path(__file__).resolve().parent.parent
BUNDLED_MODELS = REPO / "models"
"""The bundled versions in the checkout. Tests that depend on their figures read the
`bundled_models` fixture instead: only what git tracks there."""
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
REMOTE_CLIENT = ("203.0.113.7", 40000)
"""A TEST-NET-3 address: what a client on another machine looks like to the app."""
BASE_URL = "http://127.0.0.1"
"""Where test clients send requests: a Host the service answers to by default (TestClient's
own, `testserver`, is refused like any unknown name)."""


def _data_dir() -> Path | None:
    configured = os.environ.get("DATA_DIR")
    return Path(configured) if configured else None


DATA_FIXTURE = "data_paths"
"""Every test that reads the data sets does so through this fixture (directly, or through
`mnist`, `auto_mpg`, or the tiny models trained from them)."""
SERVER_FIXTURES = frozenset({"redis_server", "postgres_server"})
"""Fixtures that start a real redis-server or PostgreSQL (tests/real_servers.py)."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `data` every test that needs the data sets (and `servers` every test that starts
    Redis or PostgreSQL), so `-m "not data"` (make test-fast)
    runs exactly the tests that need none; runs before `-m` deselects."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if DATA_FIXTURE in fixtures:
            item.add_marker(pytest.mark.data)
        if SERVER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def data_paths(tmp_path_factory: pytest.TempPathFactory):
    """Where the real data sets are: DATA_DIR, else the cache, else a download into it.

    With DATA_DIR unset and the data sets neither cached nor downloadable (offline), the tests
    that need them are skipped, saying why. A DATA_DIR that is set but lacks them is an error:
    whoever set it (make test does, from ../shared/data) expects the data tests to run."""
    from training import data
    from training.pipeline import DataPaths

    cache = Path(os.environ.get("PERCEPTRON_CACHE_DIR", tmp_path_factory.mktemp("cache")))
    paths = DataPaths(data_dir=_data_dir(), cache_dir=cache)
    download = os.environ.get("PERCEPTRON_DOWNLOAD_DATA", "true").lower() not in {"0", "false"}
    try:
        for data_file in (data.MNIST_FILE, data.AUTO_MPG_FILE):
            data.locate(data_file, paths.data_dir, paths.cache_dir, download=download)
    except data.DataError as exc:
        if paths.data_dir is not None:
            pytest.fail(f"DATA_DIR={paths.data_dir} is set but unusable: {exc}", pytrace=False)
        pytest.skip(f"needs the data sets, which are not available here: {exc}")
    return paths


@pytest.fixture(scope="session")
def mnist(data_paths):
    from training import data

    return data.load_mnist(data.locate(data.MNIST_FILE, data_paths.data_dir, data_paths.cache_dir))


@pytest.fixture(scope="session")
def auto_mpg(data_paths):
    from training import data

    path = data.locate(data.AUTO_MPG_FILE, data_paths.data_dir, data_paths.cache_dir)
    return data.load_auto_mpg(path)


TINY_DIGIT = {
    "architecture": "mlp",
    "epochs": 1,
    "hidden_units": [64],
    "max_train_samples": 3000,
}
TINY_MPG = {"epochs": 20, "ensemble_size": 1, "hidden_units": [16], "early_stopping_patience": 0}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, data_paths) -> Path:
    """A models folder with version 1 of a tiny digit MLP and a tiny MPG network."""
    from training.hyperparameters import (
        DigitHyperparameters,
        MpgHyperparameters,
        PromotePolicy,
    )
    from training.pipeline import run_training
    from training.progress import SilentProgress

    folder = tmp_path_factory.mktemp("tiny-models")
    for name, hp in (
        ("digit", DigitHyperparameters.model_validate(TINY_DIGIT)),
        ("mpg", MpgHyperparameters.model_validate(TINY_MPG)),
    ):
        run_training(
            name,
            hp,
            paths=data_paths,
            models_dir=folder,
            observer=SilentProgress(),
            promote=PromotePolicy.always,
            command="tests/conftest.py tiny_models",
        )
    return folder


@pytest.fixture
def models_dir(tiny_models: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny models, free to modify."""
    target = tmp_path / "models"
    shutil.copytree(tiny_models, target)
    return target


@pytest.fixture(scope="session")
def runtime_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One LiteRT copy cache for the session: each SavedModel without a copy of its own (the
    bundled models) is converted once, not once per app."""
    return tmp_path_factory.mktemp("litert-cache")


@pytest.fixture
def settings_factory(tmp_path: Path, runtime_cache: Path):
    """Builds Settings for an app under test: private state folder, fast polling."""
    from service.settings import Settings

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "state_dir": tmp_path / "var",
            "data_dir": _data_dir(),
            "cache_dir": tmp_path / "cache",
            "runtime_cache_dir": runtime_cache,
            "poll_interval_s": 0.2,
            "log_json": False,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def client_factory():
    """Enters `TestClient(create_app(settings))` (lifespan included) and closes it after."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    clients: list[TestClient] = []

    def make(settings, client=LOOPBACK_CLIENT) -> TestClient:
        test_client = TestClient(create_app(settings), base_url=BASE_URL, client=client)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield make
    for test_client in reversed(clients):
        test_client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory, settings_factory, models_dir):
    """The app on a private copy of the tiny models, called from loopback."""
    return client_factory(settings_factory(models_dir=models_dir))


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server (with a password) for the whole session."""
    from tests.real_servers import RedisServer

    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL 15 for the whole session; `postgres_url` gives each test a database."""
    from tests.real_servers import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session's Redis, emptied for this test."""
    with redis_server.client() as client:
        client.flushall()
    return str(redis_server.url)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty PostgreSQL database for this test."""
    return str(postgres_server.new_database())


def _tracked_files(folder: Path) -> list[Path] | None:
    """The files git tracks under `folder`, or None outside a git checkout."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--", str(folder.relative_to(REPO))],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [REPO / name for name in listing.decode().split("\0") if name]


@pytest.fixture(scope="session")
def bundled_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled versions as the repository has them: in a git checkout only the
    files git tracks, so a version someone trained into `models/` by hand (or with
    `--models-dir models`) changes no test's outcome."""
    target = tmp_path_factory.mktemp("bundled") / "models"
    tracked = _tracked_files(BUNDLED_MODELS)
    if tracked is None:
        shutil.copytree(BUNDLED_MODELS, target, ignore=shutil.ignore_patterns(".tmp-*", "pin.json"))
        return target
    for source in tracked:
        destination = target / source.relative_to(BUNDLED_MODELS)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return target


def pytest_configure(config: pytest.Config) -> None:
    (REPO / "tests" / "artifacts").mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def bundled_client(tmp_path_factory, bundled_models, runtime_cache):
    """The app on the bundled models (read-only use: no pins, no new versions)."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(
        _env_file=None,
        models_dir=bundled_models,
        state_dir=tmp_path_factory.mktemp("bundled-var"),
        runtime_cache_dir=runtime_cache,
        poll_interval_s=60,
    )
    with TestClient(create_app(settings), base_url=BASE_URL, client=LOOPBACK_CLIENT) as client:
        yield client
