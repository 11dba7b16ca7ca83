"""The prediction service: loads the SavedModels in `models/` and serves them over HTTP.

Its parts, from the entry points down; each imports only from the parts below it (the contracts
in pyproject.toml, [tool.importlinter], check it):

* `cli/`: `python -m service ...`, the multi-process server, the container's health probe;
* `app.py`: the application factory (lifespan, wiring, policy);
* `routes/`: one module per group of endpoints; a route reads the request and makes one call;
* `http/` (the HTTP edge: limits, Host and Origin, tokens, rate limits, bodies, error
  rendering) beside `usecases/` (what /digit, /mpg and the tensor protocols do);
* `schemas/`: request and response bodies;
* `admission.py` (where and whether a request's images are preprocessed), `registry.py`
  (served versions and model calls), `jobs/` (training jobs: store, queue, worker);
* `samples/` (feedback samples), `batching.py` (adaptive batching of model calls);
* `database/`: tables, engine and migrations of the job database;
* `settings.py`, `metrics.py`, `logs.py`, `background.py`;
* `vision/`: from a picture to the tensor the digit model reads;
* `errors.py`: the error types every part raises.
"""
