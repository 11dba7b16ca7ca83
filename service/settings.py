"""Every setting of the service and its worker, in one place: the training settings
(`training.settings.TrainingSettings`: data, cache and models folders, pins) and the service's own.

Each field is read from the environment variable `PERCEPTRON_<FIELD>` (upper case), or from a
`.env` file in the working folder. `create_app(settings)` and the worker take an instance, so
tests pass explicit values instead of patching the environment.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from training.settings import TrainingSettings

PLACEHOLDER_TOKENS = frozenset({"", "change-me", "changeme", "replace-me", "secret", "admin"})
MIN_PRODUCTION_TOKEN_LENGTH = 16
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
LOOPBACK_PROXIES = ("127.0.0.1", "::1")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset narrows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Settings(TrainingSettings):
    environment: Literal["development", "production"] = "development"
    """`production` refuses to start without a real admin token."""
    host: str = "127.0.0.1"
    """Address `python -m service` binds to (0.0.0.0 in the container)."""
    port: int = Field(8000, ge=1, le=65535)
    """Port `python -m service` listens on."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Logging threshold."""
    log_json: bool | None = None
    """`true`: JSON lines (one object per record, with the request id), for log collectors;
    `false`: plain short lines; unset: plain lines when stderr is a terminal, JSON lines
    otherwise (containers, services, files)."""

    workers: int = Field(default_factory=lambda: available_cores(), ge=1, le=256)
    """Processes serving the API (`python -m service api` and `run`), each with its own models,
    batcher and registry; pins and new versions reach every one within poll_interval_s. Limits
    counted in memory (connections, event streams, decode and batch queues, and feedback per
    minute unless redis_url is set) apply to each process: with N processes a client may get
    up to N times them. 1 serves from the one process that starts."""

    poll_interval_s: float = Field(2.0, gt=0, le=3600)
    """How often the models folder is scanned for new versions and pins."""

    max_connections: int = Field(1000, ge=1, le=1_000_000)
    """Open connections (event streams included) beyond which the one idle longest is closed
    to admit a new one; when none is idle the new one gets 503. Keep it under the process's
    descriptor limit (`ulimit -n`)."""
    max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    """Largest request line and headers together; larger ones get 431 and the connection is
    closed (nothing more is buffered)."""
    max_header_count: int = Field(100, ge=8, le=10_000)
    """Most headers in one request; more get 431."""
    header_timeout_s: float = Field(10.0, gt=0, le=300)
    """A request's line and headers must arrive within this long (from the connection's
    opening, or from the request's first byte on a kept-alive one), else 408 and the
    connection is closed; a connection that sends nothing is closed after it too."""
    body_timeout_s: float = Field(15.0, gt=0, le=3600)
    """A request's body must arrive within this long after its headers, else the connection
    is closed (a body shorter than its Content-Length would otherwise wait for ever)."""
    write_timeout_s: float = Field(15.0, gt=0, le=3600)
    """A connection whose answer waits for a client that reads none of it for this long is
    closed, as a client disconnect (slow readers otherwise hold their sockets and answers in
    memory for ever, and are never idle, so never evicted)."""
    max_connections_per_client: int = Field(64, ge=1, le=1_000_000)
    """Open connections from one client address (per serving process) beyond which a new one
    gets 429 and is closed, so that one client cannot take the whole of max_connections.
    Behind a proxy every client shares the proxy's address: raise it there."""
    keep_alive_timeout_s: float = Field(15.0, gt=0, le=20)
    """An idle kept-alive connection is closed after this long (at most 20 s; a proxy in front
    must close its own idle upstream connections sooner)."""

    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger ones get 413 without being read."""
    # The same number as service.vision.MAX_IMAGE_PIXELS (a test holds them together): importing
    # the picture package here would load OpenCV into every process that reads its settings.
    max_image_pixels: int = Field(25_000_000, ge=784, le=178_000_000)
    """Largest image (width x height) decoded; guards against decompression bombs (at most
    Pillow's own refusal threshold, about 179 M pixels)."""
    max_request_pixels: int = Field(50_000_000, ge=784)
    """Most pixels of all the images of one /digit request together, read from their headers
    before any is decoded (413 past it): bounds a request's decoding time."""
    decode_slots: int = Field(0, ge=0, le=256)
    """Requests decoding images at the same time in each process; 0 shares the cores and a
    quarter of the memory among the workers (each slot holds about 18 bytes per pixel of
    max_image_pixels at its peak)."""
    decode_queue_limit: int = Field(32, ge=0, le=10_000)
    """Requests waiting for a decode slot beyond which /digit answers 503 with Retry-After."""
    inline_preprocess_bytes: int = Field(64 * 1024, ge=0)
    """Requests whose images hold at most this many bytes in all, and few pixels by their
    headers (the bound in service/admission.py), are preprocessed on the event loop, where a
    thread hop would cost more than decoding them; larger ones wait for a decode slot. 0 sends
    every upload to a decode slot."""
    json_inline_bytes: int = Field(64 * 1024, ge=0)
    """JSON bodies of at most this many bytes are parsed on the event loop; larger ones (up to
    a few megabytes of tensors) are parsed and converted in a worker process, since parsing
    holds the interpreter (a thread would stall the loop as much). 0 sends every JSON body to
    the worker."""
    max_batch_images: int = Field(256, ge=1, le=4096)
    """Most images in one /digit request."""
    max_number_digits: int = Field(12, ge=1, le=100)
    """Most digits /number reads in one picture; a picture with more is refused (422
    too_many_digits). Twelve holds a meter reading, a phone number or a date."""
    max_batch_cars: int = Field(1000, ge=1, le=100_000)
    """Most cars in one /mpg request."""

    batch_max_size: int = Field(64, ge=0, le=4096)
    """Most rows gathered into one model call; 0 turns adaptive batching off."""
    batch_max_wait_ms: float = Field(2.0, ge=0, le=1000)
    """Longest a request waits for others to share its model call; 0 turns batching off."""
    batch_queue_limit: int = Field(4096, ge=1)
    """Rows waiting for a model call beyond which requests are shed with 503 (32 clients each
    sending a batch of 100 fit; past this the wait would outgrow any client's patience)."""
    inline_inference_ms: float = Field(0.2, ge=0, le=1000)
    """Model calls expected to take at most this long (learnt from the calls before) run on
    the event loop instead of the inference thread: the hand-over to the thread and back costs
    about 0.1 to 0.2 ms here, more than LiteRT's mpg calls (0.02 to 0.03 ms), less than a
    digit (0.3 to 0.6 ms per image). 0 sends every call to the inference thread."""
    tf_intra_op_threads: int = Field(0, ge=0, le=256)
    """TensorFlow threads inside one op; 0 lets TensorFlow use every core (with several
    workers: each worker's share of the cores)."""
    tf_inter_op_threads: int = Field(0, ge=0, le=256)
    """TensorFlow ops run in parallel; 0 lets TensorFlow decide (with several workers: each
    worker's share of the cores)."""
    model_runtime: Literal["auto", "tensorflow", "litert"] = "auto"
    """What computes the answers. `auto`: LiteRT, on a copy of each version derived from its
    SavedModel and checked against it when it loads (same classes, probabilities within 1e-4,
    mpg within 1e-3), and TensorFlow for a version whose copy cannot be made or disagrees
    (`/models` and `/metrics` say which, and why). `tensorflow`: the SavedModel always.
    `litert`: LiteRT only; a version without an agreeing copy fails to load. LiteRT uses
    tf_intra_op_threads threads, or the worker's share of the cores."""
    runtime_cache_dir: Path | None = None
    """Where LiteRT copies converted at load (versions exported without one, such as the
    bundled models) are kept for the next start; default `<cache_dir>/litert`. A folder that
    cannot be written means converting at every load (1.5 to 2 s of CPU per model)."""

    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS)
    )
    """Names the service answers to in the Host header (comma-separated, no port; `*` allows
    any): another Host gets 400, so a web page cannot reach the service through a DNS name it
    controls (DNS rebinding). public_host is allowed as well."""
    public_host: str | None = None
    """The name clients reach the service by, e.g. behind the production proxy
    (perceptron.example.com): allowed as Host, and as the Origin of admin calls."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_PROXIES)
    )
    """Addresses and networks of the reverse proxies in front of the service (comma-separated,
    e.g. `10.0.0.5,10.244.0.0/16`): only a request from one of them may name its client in
    X-Forwarded-For (read from the right, skipping these). That address is the one the
    per-client limits count, the log shows and the loopback-only administration checks.
    Loopback by default (a proxy on the same host); empty trusts no proxy."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to call the API from a browser (comma-separated); none by default. `*`
    allows every origin to read and predict, never to administer (admin calls must come from
    a listed origin or the service's own)."""
    cors_allow_credentials: bool = False
    """Let browsers send cookies and HTTP authentication with cross-origin calls; refused
    together with `*` in cors_origins."""
    admin_token: SecretStr | None = None
    """Bearer token for jobs and version pins. Unset: only loopback clients may use them."""
    predictions_require_token: bool = False
    """Also require the admin token for predictions."""

    database_url: str | None = None
    """SQLAlchemy URL of the job database; default a SQLite file in state_dir."""
    redis_url: str | None = None
    """Redis URL for the job queue (several workers, several machines); default SQLite."""
    queue_max_pending: int = Field(20, ge=1, le=10_000)
    """Queued jobs beyond which POST /jobs answers 429."""
    max_event_streams: int = Field(256, ge=1, le=100_000)
    """Open /jobs/{id}/events streams beyond which new ones get 429 with Retry-After."""
    max_event_streams_per_client: int = Field(8, ge=1, le=10_000)
    """Open event streams per client address beyond which new ones get 429 (behind a proxy
    not listed in trusted_proxies every client shares the proxy's address)."""
    feedback_per_minute: int = Field(30, ge=1, le=100_000)
    """POST /digit/feedback requests a client address may send in a sliding minute; past it
    the answer is 429 with Retry-After. Counted in Redis when redis_url is set, so the limit
    holds across every API process and replica; in each process's memory otherwise."""
    feedback_per_day: int = Field(1000, ge=1, le=10_000_000)
    """POST /digit/feedback requests a client address may send in a sliding day, counted as
    feedback_per_minute is; past it the answer is 429 with Retry-After. A person labelling at
    the web page sends one every few seconds, so 1,000 is about an hour of steady labelling a
    day, while one address can no longer fill the store by keeping under the minute's limit
    all day (30 a minute of 2 MiB originals would be 86 GiB)."""
    feedback_max_samples: int = Field(100_000, ge=1)
    """Samples the feedback store may hold in all; past it POST /digit/feedback answers 507
    until an administrator deletes samples or the retention period removes old ones."""
    feedback_max_bytes: int = Field(2 * 2**30, ge=32 * 2**20)
    """Bytes of disk the feedback store may take in all: its images (originals and the 28x28
    PNGs) and, with SQLite, the database's write-ahead log, counted at no less than the 16 MiB
    it is kept to at rest. Past it POST /digit/feedback answers 507, so disk growth from
    feedback stays within it (within a few uploads when several processes add at once)."""
    max_feedback_image_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """The largest original image kept with a feedback sample; larger uploads get 413."""
    sample_retention_days: int = Field(90, ge=0, le=36_500)
    """Samples older than this many days are deleted (checked hourly); 0 keeps them for ever."""
    sample_retention_keeps_accepted: bool = True
    """Accepted samples are training data: keep them past the retention period unless false."""
    event_stream_timeout_s: float = Field(900.0, gt=0, le=86_400)
    """An event stream is ended after this long (an EventSource reconnects with
    Last-Event-ID and loses nothing), so no stream is held for ever."""
    max_job_cost_s: float = Field(21_600.0, gt=0)
    """Estimated run time (on 2 reference CPU cores; training/cost.py) beyond which POST /jobs
    refuses a job with 422; the default digit recipe is estimated at about 11 minutes, its
    `--preset best` at about an hour."""
    max_job_memory_bytes: int = Field(4 * 2**30, ge=64 * 2**20)
    """Estimated memory a job's training takes beyond the runtime and the data set, beyond
    which POST /jobs refuses it with 422 (training/cost.py: the parameters with their gradients
    and optimiser state, and every layer's values for a whole batch); the default digit recipe
    is estimated at about 170 MiB, 256-filter convolutions at batch 4,096 at about 30 GiB."""
    job_timeout_s: float = Field(43_200.0, gt=0)
    """Wall-clock time after which a running job is stopped and failed; nothing is exported."""
    keep_unpromoted_versions: int = Field(5, ge=0, le=10_000)
    """Versions held back from promotion kept per model (the newest); older ones are deleted
    after each job. Served and pinned versions are never deleted."""
    job_heartbeat_s: float = Field(5.0, gt=0, le=600)
    """How often a running job reports that its worker is alive."""
    job_lost_after_s: float = Field(60.0, gt=0, le=86_400)
    """Silence after which a running job is failed as 'worker lost'."""
    worker_stop_timeout_s: float = Field(8.0, gt=0, le=3600)
    """How long a worker told to stop (SIGTERM, Ctrl-C) waits for its running job to reach its
    next batch and go back to the queue; past it the job's process is killed and the job is
    queued again all the same. Keep it under the time the platform waits before SIGKILL
    (Docker: 10 s; Kubernetes: terminationGracePeriodSeconds)."""

    @field_validator(
        "admin_token", "public_host", "database_url", "redis_url", "log_json", mode="before"
    )
    @classmethod
    def _blank_means_unset(cls, value: Any) -> Any:
        # Compose files pass `VAR=${VAR:-}`: an empty value must mean "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_hosts", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("[") and value.endswith("]"):
                # A JSON list, unless it is a bracketed IPv6 address such as [::1].
                with contextlib.suppress(ValueError):
                    return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return value

    @model_validator(mode="after")
    def _refuse_credentials_for_every_origin(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "PERCEPTRON_CORS_ORIGINS=* cannot be combined with "
                "PERCEPTRON_CORS_ALLOW_CREDENTIALS=true: every web site could then call the "
                "service with its users' credentials; list the origins instead"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production":
            token = self.admin_token.get_secret_value() if self.admin_token else ""
            if (
                token.strip().lower() in PLACEHOLDER_TOKENS
                or len(token) < MIN_PRODUCTION_TOKEN_LENGTH
            ):
                raise ValueError(
                    "PERCEPTRON_ADMIN_TOKEN must be set to a random secret of at least "
                    f"{MIN_PRODUCTION_TOKEN_LENGTH} characters in production "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
                )
            if self.redis_url:
                # Whoever can write to the queue can make workers train (not run code: the
                # messages are JSON), so the queue's Redis needs a real password too.
                password = urlsplit(self.redis_url).password or ""
                if password.strip().lower() in PLACEHOLDER_TOKENS:
                    raise ValueError(
                        "PERCEPTRON_REDIS_URL must carry a real password in production "
                        "(redis://:PASSWORD@host:6379/0; set REDIS_PASSWORD in .env for compose)"
                    )
        return self

    @property
    def job_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'jobs.sqlite3'}"

    @property
    def queue_path(self) -> Path:
        return self.state_dir / "queue.sqlite3"
