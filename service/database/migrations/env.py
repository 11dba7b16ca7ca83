"""Alembic's entry point for the job database. It runs only through `service.database.migrate`,
which hands over an open connection in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context

from service.database.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
