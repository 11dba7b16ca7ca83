"""The job database: its tables (jobs, their events, feedback samples), the engine, and the
Alembic migrations that every process opening it applies first. `service.jobs` and
`service.samples` keep their records here; neither imports the other's store for it."""
