"""The API application.

uvicorn server.main:app                     # settings from GRO_* variables
create_app(settings, queue)                 # tests and `gro up`
"""

from __future__ import annotations

import functools
import gc

import anyio
from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errors import install_error_handlers
from server.api.feeds import Feeds
from server.api.options import AllowedMethods
from server.api.routes import (
    checkpoints,
    comparisons,
    datasets,
    evaluations,
    generations,
    health,
    jobs,
    methods,
    openai_files,
    openai_jobs,
)
from server.config import Settings, get_settings
from server.db.session import Pool, get_engine
from server.queue import CeleryQueue, JobQueue
from server.services.response_cache import ResponseCache
from server.services.series_cache import SeriesCache
from server.storage import sweep_uploads
from server.telemetry import LatencyMiddleware, Telemetry

DESCRIPTION = """\
Fine-tune language models with human or rule-based feedback through one objective (GRO).

OpenAI's files and fine-tuning API is served as-is under /v1/files and /v1/fine_tuning/jobs
(the official `openai` SDK works unchanged; docs/openai.md). gro's own API is shaped like it,
extended for RL: metric series, scored samples with advantages, anchor distances and weights,
comparisons over seeds, and evaluations. Every endpoint but the health checks needs an API key
(`Authorization: Bearer gro-...`, made with `gro keys create --owner NAME`).
"""

UPLOAD_PATHS = ("/v1/datasets", "/v1/datasets/validate", "/v1/files")


class UploadLimit:
    """Refuses upload bodies over the limit while they arrive, so an oversized file is never
    spooled to disk whole (413 from the Content-Length alone when it is sent)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in UPLOAD_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        # Multipart framing adds a few hundred bytes around the file itself.
        allowed = self.limit + 64 * 1024
        if declared is not None and declared.isdigit() and int(declared) > allowed:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > allowed:
                # HTTPException: FastAPI passes it through body parsing (others become a 400).
                raise HTTPException(413, f"the upload is over {self.limit} bytes")
            return message

        await self.app(scope, counting, send)


async def _too_large(send: Send, limit: int) -> None:
    body = (
        '{"error": {"code": "upload_too_large", "message": "the upload is over '
        f'{limit} bytes", "line": null, "field": "file", "details": []}}}}'
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, queue: JobQueue | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="gro",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "datasets", "description": "Upload and validate training data"},
            {"name": "jobs", "description": "Training jobs and what they produce"},
            {"name": "comparisons", "description": "Variants × seeds, summarised with CIs"},
            {"name": "evaluations", "description": "Held-out reward, pass@k, KL, diversity"},
            {"name": "checkpoints", "description": "Model downloads"},
            {"name": "health", "description": "Liveness, readiness, Prometheus"},
            {
                "name": "openai",
                "description": "OpenAI's files and fine_tuning.jobs (docs/openai.md)",
            },
        ],
    )
    app.state.settings = settings
    pool = Pool(settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout_s)
    get_engine(settings.database_url, pool)
    # Sessions the API opens at once (server.api.deps.get_session): the pool's capacity.
    app.state.db_slots = anyio.Semaphore(pool.size + pool.overflow)
    app.state.queue = queue or CeleryQueue(settings.broker_url)
    app.state.telemetry = Telemetry()
    app.state.metrics_cache = ResponseCache(settings.metrics_cache_bytes)
    app.state.series_cache = SeriesCache()  # downsampled series, refreshed from new points
    app.state.feeds = Feeds(settings.database_url, app.state.db_slots)  # event streams' pollers
    # Orphans of an API killed mid-upload (the age spares other replicas' uploads in progress).
    sweep_uploads(settings.storage_dir, settings.upload_tmp_max_age_s)
    install_error_handlers(app)
    # Each router carries its full /v1/... prefix: route templates (metric labels) are whole.
    routers = (datasets, jobs, comparisons, evaluations, generations, checkpoints, methods, health)
    for module in (*routers, openai_files, openai_jobs):
        app.include_router(module.router)
    app.add_middleware(LatencyMiddleware, telemetry=app.state.telemetry)
    app.add_middleware(UploadLimit, limit=settings.max_upload_bytes)
    app.add_middleware(AllowedMethods)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    return app


@functools.cache
def _served_app() -> FastAPI:
    """The app `uvicorn server.main:app` serves: built once however often it is looked up."""
    app = create_app()
    # What is alive now (the imported libraries, the app: ~130k objects) lives as long as the
    # process: out of the collector's sight, a full collection walks only what requests made
    # since. Walking everything took 55 ms idle, ~100 under load: a stop of every request at
    # once, several times a minute, which was the API's p99 (bench/load.py).
    gc.collect()
    gc.freeze()
    # And fewer collections of what requests make: a young collection every 50,000
    # allocations rather than 700, so a full one (under load 20-30 ms) comes ~70x less often;
    # the garbage in between is a few MB.
    gc.set_threshold(50_000, 20, 20)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn server.main:app` builds the app on first access, not at import (tests import
    # this module with their own settings).
    if name == "app":
        return _served_app()
    raise AttributeError(name)
