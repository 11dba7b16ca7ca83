"""Training jobs: records in a database (`store`), a queue (`queue`), and the worker that runs
them (`worker`, `runner`). Training never runs in the API process."""
