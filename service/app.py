"""The application factory: `create_app(settings)` builds the FastAPI app; its lifespan loads
the models (per process, after any fork), starts the background tasks and stops them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from service.admission import ImageAdmission
from service.database.threads import in_thread_to_the_end
from service.http.client_address import ClientAddressMiddleware
from service.http.deps import Serving
from service.http.error_handlers import install_error_handlers
from service.http.json_workers import JsonWorkers
from service.http.middleware import (
    JsonCORSMiddleware,
    RequestContextMiddleware,
    RequestGuardMiddleware,
)
from service.http.rate_limit import Allowance, RateLimiter
from service.jobs.broadcast import JobEventHub
from service.jobs.queue import build_queue
from service.jobs.store import JobStore
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.routes import (
    digit,
    health,
    inference_v2,
    jobs,
    models,
    mpg,
    number,
    samples,
    tfserving,
)
from service.samples.store import SampleStore
from service.settings import Settings, available_cores

log = logging.getLogger(__name__)

OPENAPI_URL = "/openapi.json"

WEB_DIR = Path(__file__).resolve().parent / "web"
SWAGGER_UI = "/static/vendor/swagger-ui"
"""swagger-ui-dist from the npm registry, vendored with its licence (no CDN at run time)."""
SAMPLE_SWEEP_INTERVAL_S = 3600.0
"""How often samples past their retention period are deleted."""

DESCRIPTION = """
Recognises handwritten digits (MNIST-style CNN) and predicts cars' fuel economy (Auto MPG
regressor), both served from versioned TensorFlow SavedModels that training jobs produce.
Errors always come as `{"error": "...", "code": "...", "request_id": "..."}`.
"""


def tensorflow_threads(settings: Settings) -> tuple[int, int]:
    """(intra-op, inter-op) threads for this process, 0 meaning TensorFlow's own choice. With
    several workers an unset count becomes the worker's share of the cores: each worker's
    TensorFlow otherwise sizes its pools to every core, and the pools' threads then compete
    (bench/RESULTS.md: a third more /mpg requests a second on 2 cores with one thread each)."""
    share = max(1, available_cores() // settings.workers) if settings.workers > 1 else 0
    return settings.tf_intra_op_threads or share, settings.tf_inter_op_threads or share


def configure_tensorflow(settings: Settings) -> None:
    """Applies the thread settings; TensorFlow accepts them only before its first op."""
    import tensorflow as tf

    intra, inter = tensorflow_threads(settings)
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        log.warning("TensorFlow is already initialised in this process; thread settings ignored")


M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter for the size from which allocations are mapped on their own."""
MMAP_THRESHOLD = 128 * 1024


def return_large_buffers_when_freed() -> None:
    """Makes large buffers (upload bodies, decoded pictures, JSON documents) go back to the
    system when freed. glibc raises its mapping threshold after each large free, up to 32 MiB,
    and then serves later buffers of that size from heaps it never shrinks: a burst of 2 MiB
    feedback uploads left about 200 MB resident after it ended (`python -m bench abuse --only
    feedback-flood`). Setting the threshold turns that adjustment off. Nothing to do without
    glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service's app for `settings` (read from the environment when None): its lifespan,
    its wiring (state, error handlers, routes, web page) and its request policy (middleware)."""
    settings = settings or Settings()
    metrics = ServiceMetrics()
    registry = ModelRegistry(settings, metrics)
    app = FastAPI(
        title="perceptron",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan(settings, registry),
        docs_url=None,  # served by _mount_web from vendored assets, so /docs works offline
        redoc_url=None,
        openapi_url=None,  # served by _mount_web, encoded once
    )
    _wire(app, settings, registry, metrics)
    _apply_policy(app, settings, metrics)
    return app


def _lifespan(
    settings: Settings, registry: ModelRegistry
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What each serving process starts after any fork and stops on the way out: TensorFlow's
    threads, the job store, queue and event hub, the sample store, the models, and the two
    background sweeps (lost jobs, old samples)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_tensorflow(settings)
        return_large_buffers_when_freed()
        store = JobStore(settings.job_database_url)
        app.state.job_store = store
        app.state.job_queue = queue = build_queue(settings)
        hub = JobEventHub(
            store,
            max_streams=settings.max_event_streams,
            max_streams_per_client=settings.max_event_streams_per_client,
        )
        app.state.event_hub = hub
        samples = SampleStore(store.engine)
        app.state.sample_store = samples
        await registry.start()
        monitor = asyncio.create_task(_watch_for_lost_jobs(store, settings), name="job-monitor")
        retention = asyncio.create_task(_purge_old_samples(samples, settings), name="retention")
        try:
            yield
        finally:
            for task in (monitor, retention):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.close()
            await app.state.feedback_limiter.close()
            app.state.serving.json_workers.close()
            await registry.stop()
            queue.close()
            store.close()

    return lifespan


def _wire(
    app: FastAPI, settings: Settings, registry: ModelRegistry, metrics: ServiceMetrics
) -> None:
    """What the routes find on `app.state`, the error handlers, the routers and the web page."""
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = registry
    app.state.feedback_limiter = RateLimiter(
        "feedback",
        [
            Allowance(settings.feedback_per_minute, "minute", "PERCEPTRON_FEEDBACK_PER_MINUTE"),
            Allowance(settings.feedback_per_day, "day", "PERCEPTRON_FEEDBACK_PER_DAY"),
        ],
        redis_url=settings.redis_url,
    )
    admission = ImageAdmission.from_settings(settings)
    json_workers = JsonWorkers(settings.json_inline_bytes)
    app.state.serving = Serving(settings, registry, metrics, admission, json_workers)

    install_error_handlers(app)
    # The prediction routes first: FastAPI tries routers in order, and matching a request
    # against every route of the routers before costs more than the route itself.
    for router in (
        digit.router,
        number.router,
        mpg.router,
        samples.feedback_router,
        samples.router,
        models.router,
        jobs.router,
        health.router,
    ):
        app.include_router(router)
    app.include_router(tfserving.router)
    app.include_router(inference_v2.router)
    _mount_web(app)


def _apply_policy(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """The middleware every request passes, outermost last: cross-origin rules (when
    configured), the request guard (Host, Content-Encoding, body size), the request context
    (id, access log, metrics) and the client address (from trusted proxies' headers)."""
    if settings.cors_origins:
        if "*" in settings.cors_origins and settings.environment == "production":
            log.warning(
                "PERCEPTRON_CORS_ORIGINS=* lets every web site read this service's answers "
                "and call its predictions from its visitors' browsers; list the origins that "
                "need it instead"
            )
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Location"],
        )
    app.add_middleware(RequestGuardMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # Outermost: every layer below, the access log included, sees the client it resolves.
    app.add_middleware(ClientAddressMiddleware, settings=settings)


async def _purge_old_samples(store: SampleStore, settings: Settings) -> None:
    """Deletes samples past their retention period, at start and then hourly."""
    if not settings.sample_retention_days:
        return
    while True:
        try:
            deleted = await in_thread_to_the_end(
                store.purge,
                timedelta(days=settings.sample_retention_days),
                keep_accepted=settings.sample_retention_keeps_accepted,
            )
        except Exception:  # a busy or unreachable database must not end the sweeps
            log.exception("deleting old samples failed; retrying in an hour")
        else:
            if deleted:
                log.info(
                    "deleted %d samples older than %d days", deleted, settings.sample_retention_days
                )
        await asyncio.sleep(SAMPLE_SWEEP_INTERVAL_S)


async def _watch_for_lost_jobs(store: JobStore, settings: Settings) -> None:
    """Fails running jobs whose worker stopped sending heartbeats (or died on this host)."""
    interval = max(0.5, min(settings.job_heartbeat_s, settings.job_lost_after_s / 4))
    while True:
        await asyncio.sleep(interval)
        try:
            await in_thread_to_the_end(store.fail_lost, settings.job_lost_after_s)
        except Exception:  # a locked database now is no reason to stop watching
            log.warning("checking for lost jobs failed", exc_info=True)


def _mount_web(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @functools.cache
    def encoded_document() -> bytes:
        # The document does not change while the app runs. Encoding its 110 KB takes about
        # 1.7 ms, and clients that pipeline many requests for it without reading the answers
        # would otherwise make the server encode it again for every request.
        return bytes(JSONResponse(app.openapi()).body)

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi() -> Response:
        return Response(encoded_document(), media_type="application/json")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="perceptron API",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")
