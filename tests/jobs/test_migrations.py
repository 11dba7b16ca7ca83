"""Alembic migrations of the job database, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from service.database import migrate
from service.database.engine import make_engine
from service.database.tables import Base
from service.jobs.store import JobStore
from tests.conftest import REPO

TABLES = {"jobs", "job_events", "samples"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_builds_exactly_the_tables_the_code_declares(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head()
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        # A column or index added to service/database/tables.py without a migration shows here.
        assert differences == []
    finally:
        engine.dispose()


def test_the_migrate_command_upgrades_and_says_to_which_revision(
    database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PERCEPTRON_DATABASE_URL": database_url}
    run = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        cwd=tmp_path,  # outside the repository: no .env of a developer's applies
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"job database at revision {migrate.head()} (newest)\n"
    engine = make_engine(database_url)
    try:
        assert migrate.current(engine) == migrate.head()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        assert tables(engine) == TABLES
        migrate.downgrade(engine, "base")
        assert tables(engine) == set() and migrate.current(engine) is None
        migrate.upgrade(engine)
        assert tables(engine) == TABLES and migrate.current(engine) == migrate.head()
    finally:
        engine.dispose()


def test_a_database_made_by_create_all_is_adopted_with_its_jobs(database_url: str) -> None:
    """Before migrations, JobStore ran `Base.metadata.create_all`: the first revision's tables
    and no alembic_version. Such a database is stamped, not rebuilt, and its jobs stay."""
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, migrate.BASELINE)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
        assert migrate.current(engine) is None
    finally:
        engine.dispose()
    legacy = JobStore(database_url)
    job = legacy.create("mpg", {"epochs": 5}, "never")
    # Back to the create_all state: the first revision's tables, with the job, and no version.
    migrate.downgrade(legacy.engine, migrate.BASELINE)
    with legacy.engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
    legacy.close()

    store = JobStore(database_url)
    try:
        assert migrate.current(store.engine) == migrate.head()
        kept = store.get(job.id)
        assert kept is not None and kept.status == "queued"
    finally:
        store.close()


def test_processes_starting_together_migrate_once(database_url: str) -> None:
    """API replicas and workers start at once; the lock lets one migrate and the others find
    the schema done (without it, both try CREATE TABLE and one fails)."""
    engines = [make_engine(database_url) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def open_database(engine) -> None:
        start.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_database, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == [] and tables(engines[0]) == TABLES
    finally:
        for engine in engines:
            engine.dispose()


def test_the_migration_scripts_ship_in_the_installed_package() -> None:
    """They are data to setuptools (no __init__.py): pyproject's package-data must name them."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["service"]
    package = REPO / "service"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    scripts = {
        path
        for path in migrate.MIGRATIONS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert any(path.parent.name == "versions" for path in scripts)
    assert scripts <= shipped, scripts - shipped
