# The two commands the README promises: `make run` and `make test`. The Dockerfile installs
# through `make install` too, so the container runs what is tested here.

PYTHON ?= python3.11
VENV ?= .venv
LOCK ?= requirements/cpu.lock
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# Tests read the real data sets from ../shared/data when it is there (see .ci/run).
export DATA_DIR ?= $(if $(wildcard ../shared/data/mnist.npz),$(abspath ../shared/data),)

.DEFAULT_GOAL := help
.PHONY: help install install-dev develop run api worker test test-fast lint typecheck lock \
        browser-deps server-deps container-check audit train-digit train-mpg reset-models bench \
        bench-venv docs-check clean

help:
	@echo "make run        set up .venv and start the API and one training worker on :8000"
	@echo "make test       set up .venv with dev tools and run the whole test suite"
	@echo "make test-fast  the suite without slow, browser and data tests"
	@echo "make train-digit ARGS=...  python -m training digit (also train-mpg)"
	@echo "make reset-models  back to the bundled models (deletes trained versions and pins)"
	@echo "make lint       ruff and mypy"
	@echo "make docs-check the README's shell examples, run or checked (no Docker needed)"
	@echo "make container-check  hadolint, compose validation and the container-vs-code tests"
	@echo "make audit      pip-audit of every requirements/*.lock (needs the vulnerability feed online)"
	@echo "make lock       re-resolve requirements/*.lock from pyproject.toml (needs uv)"
	@echo "make bench      python -m bench serve (see bench/RESULTS.md; BentoML peer: make bench-venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A stamp per lock file: reinstall when the lock changes, not on every run.
$(VENV)/.installed-%: requirements/%.lock | $(BIN)/python
	$(PIP) install --quiet --disable-pip-version-check --no-deps --require-hashes -r $<
	touch $@

LOCK_STAMP := $(VENV)/.installed-$(basename $(notdir $(LOCK)))

# `install` is the locked dependencies only: the Dockerfile runs it before copying any code.
install: $(LOCK_STAMP)

# The project itself in editable mode, for the console scripts `.venv/bin/perceptron` and
# `.venv/bin/perceptron-train`. Offline by construction: no index and no build isolation, so
# the build uses the setuptools the lock installed, and --no-deps keeps the lock authoritative.
$(VENV)/.installed-project: pyproject.toml $(LOCK_STAMP)
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
	  --no-index --editable .
	touch $@

develop: $(VENV)/.installed-project

install-dev:
	@$(MAKE) --no-print-directory develop LOCK=requirements/dev.lock

run: develop
	$(BIN)/python -m service run

api: develop
	$(BIN)/python -m service api

worker: develop
	$(BIN)/python -m service worker

# Test files are spread over TEST_PROCESSES processes (pytest-xdist), a file's tests kept
# together in one: most tests wait on real servers, so two processes fit on two cores. Tests
# marked `serial` run after, in one process: under xdist schemathesis runs and reports its
# operations as one test, so the fuzzing would pass without fuzzing every operation.
TEST_PROCESSES ?= 2

test: install-dev browser-deps server-deps
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -m serial

# No data sets, no browser, no training: tests that need the data sets are marked `data`.
# The job tests still run on real Redis and PostgreSQL (marked `servers`).
test-fast: install-dev server-deps
	$(BIN)/python -m pytest -m "not slow and not browser and not data"

lint: install-dev
	$(BIN)/ruff check service training tests bench
	$(BIN)/ruff format --check service training tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Chromium (browser tests), docker-compose 1.29 (compose validation) and wrk (the load tool of
# `python -m bench`) come from Debian.
browser-deps:
	@command -v chromium >/dev/null && command -v docker-compose >/dev/null && \
	  command -v wrk >/dev/null || { \
	  echo "installing chromium, docker-compose and wrk from Debian packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium docker-compose wrk >/dev/null; }

# redis-server and PostgreSQL (15 on Debian 12) for the job tests on real servers
# (tests/real_servers.py starts private ones on loopback). If they cannot be installed, this
# fails, and so does `make test`: those tests must not pass by being skipped.
server-deps:
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && \
	  test -x /usr/sbin/nginx || { \
	  echo "installing redis-server, postgresql and nginx from Debian packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    redis-server postgresql nginx >/dev/null; }

# The README's shell examples: curl against a live service on the bundled models, the training
# command lines parsed, make targets and compose profiles checked (tests/docs; also in make test).
docs-check: install-dev
	$(BIN)/python -m pytest tests/docs

# The container files, checked without a Docker engine (tests/containers; also part of `make test`).
container-check: install-dev browser-deps
	$(BIN)/python -m pytest tests/containers

# Known vulnerabilities in every locked dependency. The feed (PyPI's JSON API, or OSV with
# AUDIT_SERVICE=osv) must be reachable: the machines that run `make test` here reach only the
# package index, so this is not part of `make test` (SECURITY.md says how it is covered).
# --strict fails the audit when any package could not be checked, rather than passing it.
AUDIT_SERVICE ?= pypi
audit: install-dev
	$(BIN)/pip-audit --strict --vulnerability-service $(AUDIT_SERVICE) --disable-pip \
	  --require-hashes --progress-spinner off $(addprefix -r ,$(wildcard requirements/*.lock))

# dev.lock is resolved first; the runtime locks are constrained by it, so the image ships
# exactly the versions the tests ran against.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra dev $(LOCK_FLAGS) -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --extra cpu -c requirements/dev.lock $(LOCK_FLAGS) -o requirements/cpu.lock
	$(BIN)/uv pip compile pyproject.toml --extra gpu -c requirements/dev.lock $(LOCK_FLAGS) -o requirements/gpu.lock

LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
	--no-header --annotation-style line -q

# `make train-digit ARGS="--architecture mlp --epochs 2"`: any option of `python -m training`.
train-digit: develop
	$(BIN)/python -m training digit $(ARGS)

train-mpg: develop
	$(BIN)/python -m training mpg $(ARGS)

# Trained versions and pins live in var/models (PERCEPTRON_MODELS_DIR); the bundled ones in
# models/ are never written. This deletes the former, after a question.
reset-models: develop
	$(BIN)/python -m service reset-models

bench: install-dev bench-venv
	$(BIN)/python -m bench serve

# The BentoML peer's own environment (the `bench` extra's packages, from PyPI, unpinned below
# them): kept apart so BentoML's dependencies never touch .venv, the locks or the image.
BENCH_VENV := .venv-bench
bench-venv: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  $$($(PYTHON) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["bench"]))')
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis tests/artifacts *.egg-info build
