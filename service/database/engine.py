"""The database engine the jobs and the samples share: a SQLite file by default, PostgreSQL when
`PERCEPTRON_DATABASE_URL` says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

WAL_SIZE_LIMIT = 16 * 2**20
"""Bytes SQLite's write-ahead log is truncated to after a checkpoint."""


def sqlite_log(engine: Engine) -> Path | None:
    """The write-ahead log of a SQLite file database, or None for any other database."""
    name = engine.url.database
    if engine.dialect.name != "sqlite" or name in (None, "", ":memory:"):
        return None
    database = Path(str(name))
    return database.with_name(database.name + "-wal")


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL (readers never block the writer) and a busy wait."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # The log keeps a second copy of every page written since the last checkpoint, and
            # SQLite reuses it without shrinking it: a burst of 2 MiB feedback originals would
            # leave it as large as the burst, beside the store's quota. Truncate it after
            # each checkpoint to this size.
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
