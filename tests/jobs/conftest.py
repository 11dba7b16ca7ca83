"""Every jobs test runs on both deployments of the job system: a SQLite job database with a
SQLite Huey queue (one machine, nothing to install), and PostgreSQL with a Redis queue (several
machines), on real servers (tests/real_servers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql+redis", marks=pytest.mark.servers)],
)
def job_backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings that select the parametrised backend ({} for the SQLite default)."""
    if request.param == "sqlite":
        return {}
    return {
        "database_url": request.getfixturevalue("postgres_url"),
        "redis_url": request.getfixturevalue("redis_url"),
    }


@pytest.fixture
def settings_factory(settings_factory, job_backend):
    """tests/conftest.py's settings, on the parametrised job backend."""

    def make(**overrides: object):
        return settings_factory(**{**job_backend, **overrides})

    return make


def backend_environment(settings) -> dict[str, str]:
    """The environment a worker process needs to share `settings`' job database and queue."""
    env = {"PERCEPTRON_STATE_DIR": str(settings.state_dir)}
    if settings.database_url:
        env["PERCEPTRON_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["PERCEPTRON_REDIS_URL"] = settings.redis_url
    return env
