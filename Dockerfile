# One image for the API and the training worker; the command picks the role:
#   docker build -t perceptron:cpu .                        # tensorflow-cpu (requirements/cpu.lock)
#   docker build -t perceptron:gpu --build-arg VARIANT=gpu . # tensorflow[and-cuda] (gpu.lock)
#   docker run -p 8000:8000 perceptron:cpu                   # python -m service api
#   docker run perceptron:cpu python -m service worker       # a training worker
#
# The variant is a build argument, not a target: the two images differ only in which lock
# file `make install` installs, so one builder stage and one runtime stage serve both. The
# GPU variant stays on the same slim Python base because the NVIDIA wheels that
# tensorflow[and-cuda] pulls in (nvidia-cudnn-cu12, nvidia-cublas-cu12, ...) carry CUDA and
# cuDNN; the host needs only the NVIDIA driver and nvidia-container-toolkit.
#
# Builder and runtime must use the same base: the venv's bin/python links to the base's
# /usr/local/bin/python3.11. To pin the digest too, resolve it with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm
# and build with --build-arg BASE_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG VARIANT=cpu
# Every package in requirements/{cpu,gpu}.lock ships a manylinux x86_64 wheel for CPython
# 3.11, so the only build tool needed is make; PIP_ONLY_BINARY makes pip fail loudly rather
# than try to compile an sdist should a future lock need one.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all:
# make is not version-pinned (DL3008): the base tag pins the Debian release (bookworm) and
# make's version with it, while exact Debian pins break as soon as the mirror moves on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies before code: editing service/ or training/ reuses this layer.
COPY Makefile ./
COPY requirements/${VARIANT}.lock requirements/
# The same command `make run` depends on, so the container runs what the tests ran.
# Then what is installed but never read at run time (about 350 MB of the venv's 1.8 GB):
# TensorFlow's C++ headers, for compiling custom ops, and libclang, which tensorflow declares
# for its build tooling. The service and training tests pass with both hidden (docs/containers.md).
RUN make install VENV=/opt/venv LOCK=requirements/${VARIANT}.lock PYTHON=python3.11 \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include \
              /opt/venv/lib/python3.11/site-packages/clang

FROM ${BASE_IMAGE} AS runtime
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="perceptron" \
      org.opencontainers.image.description="MNIST digit and Auto MPG models behind FastAPI, with training workers" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.perceptron.variant="${VARIANT}"

# A fixed uid/gid so volumes and bind mounts can be prepared for it on any host. The folders
# that named volumes mount over are created here, owned by that user: Docker seeds an empty
# named volume from the image's folder (owner and mode) on first mount, so the volumes come up
# writable for the service. Nothing else is written: the root file system may be read-only.
RUN groupadd --system --gid 10001 perceptron \
    && useradd --system --uid 10001 --gid perceptron --home-dir /home/perceptron \
       --create-home --shell /usr/sbin/nologin perceptron \
    && install -d -o perceptron -g perceptron /var/lib/perceptron /var/lib/perceptron/models \
       /var/cache/perceptron

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    PERCEPTRON_HOST=0.0.0.0 \
    PERCEPTRON_PORT=8000 \
    PERCEPTRON_BUNDLED_MODELS_DIR=/app/models \
    PERCEPTRON_MODELS_DIR=/var/lib/perceptron/models \
    PERCEPTRON_STATE_DIR=/var/lib/perceptron \
    PERCEPTRON_CACHE_DIR=/var/cache/perceptron

WORKDIR /app
# Code is root-owned and read-only for the service user; byte-compiled here because that
# user cannot write __pycache__ next to it.
COPY service/ service/
COPY training/ training/
RUN python -m compileall -q service training
# The bundled models are read-only seeds, like the code: the API and every worker copy the
# versions the models volume lacks when they start (training/bundled.py); trained versions and
# pins are written to the volume only.
COPY models/ models/

USER 10001:10001
EXPOSE 8000
# Healthy means the role this container runs works, whichever the command picked: the API
# answers GET /readyz with 200 (every model serves), a worker reaches its job queue, `run` both
# (service/cli/healthcheck.py). The start period covers importing TensorFlow and loading the models.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "service", "healthcheck"]
CMD ["python", "-m", "service", "api"]
