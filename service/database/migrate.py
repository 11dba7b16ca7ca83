"""Schema migrations of the job database (Alembic; the scripts are in `migrations/versions/`
inside the package, so an installed service and the container image carry them).

Every process that opens the job database (the API, each worker, `python -m service migrate`)
upgrades it to the newest revision first, one process at a time: a PostgreSQL advisory lock
(API replicas and workers on several machines), a lock file beside a SQLite database (only
processes on one machine share a SQLite file). A database that `create_all` made before
migrations existed is recognised by its tables and stamped with the first revision.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

# Alembic narrates every step at INFO, some of it when imported, in every process that starts;
# the one line `upgrade` logs when the schema changed is what an operator needs.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402 - after the line above
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
"""The revision whose schema `create_all` made before migrations existed."""
ADVISORY_LOCK_KEY = int.from_bytes(b"perceptr")
"""The PostgreSQL advisory lock (a bigint) every process takes while migrating."""


def head() -> str:
    """The newest revision the installed code knows."""
    revision = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert revision is not None, f"no migrations in {MIGRATIONS}"
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision; None when it has never been migrated or stamped."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Brings the database to `revision` (default the newest), creating it when empty."""
    with _exclusive(engine) as connection:
        config = _config(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        if before is None and inspect(connection).has_table("jobs"):
            log.info("job database made before migrations: stamping revision %s", BASELINE)
            command.stamp(config, BASELINE)
            before = BASELINE
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if after != before:
        log.info("job database migrated from revision %s to %s", before or "(empty)", after)


def downgrade(engine: Engine, revision: str) -> None:
    """Takes the database back to `revision` ("base" drops every table)."""
    with _exclusive(engine) as connection:
        command.downgrade(_config(connection), revision)


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """One transaction on `engine` that no other process migrates alongside."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": ADVISORY_LOCK_KEY})
            yield connection
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with engine.begin() as connection:
            yield connection
        return
    with Path(f"{database}.migrate-lock").open("a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
