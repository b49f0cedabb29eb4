"""Assembling the server: engine, clock, pipeline, the Starlette shell and the background worker."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from zbmc import logs, metrics
from zbmc.account_http import AccountApi
from zbmc.admin_http import admin_routes
from zbmc.clock import Clock
from zbmc.db.engine import Checkpointer, WriteTurns, create_db_engine
from zbmc.db.migrate import is_at_head
from zbmc.drivers import make_driver, make_host_driver
from zbmc.edge import API_PREFIX, Edge
from zbmc.errors import ApiError, MethodNotAllowed, PathNotFound
from zbmc.openapi import build_document
from zbmc.pipeline import Call, Outcome, Pipeline, error_body, new_request_id
from zbmc.ratelimit import build_limiter
from zbmc.settings import Settings, load_settings
from zbmc.worker import LoopWorker, Worker, WorkerThread


class SchemaBehind(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    worker: Worker
    turns: WriteTurns | None = None


def build_runtime(settings: Settings, *, server: bool = False) -> Runtime:
    """``server``: the API server's runtime, whose lifespan runs the SQLite checkpointer. On a
    SQLite file the worker's write transactions (thread or process) and the API's take turns
    (``WriteTurns``)."""
    url = settings.effective_database_url
    engine = create_db_engine(url, background_checkpoints=server)
    clock = Clock()
    turns = WriteTurns.of(engine)
    driver = make_driver(settings.driver, settings.driver_command)
    host_driver = make_host_driver(
        settings.host_driver,
        settings.host_driver_command,
        settings.host_delay_seconds,
        settings.host_timeout_seconds,
    )
    worker = metrics.MeteredWorker(
        engine,
        clock,
        driver,
        turns,
        host_driver,
        settings.release_after_seconds,
        signature_window=settings.signature_window_seconds,
    )
    return Runtime(settings, engine, clock, worker, turns)


def _envelope(request: Request, error: ApiError) -> Response:
    request_id = new_request_id()
    action = request.headers.get("x-zc-action")
    method, path = request.method, request.url.path
    logs.log_request(
        request_id, None, action, error.code, error.status, 0.0, method=method, path=path
    )
    return Response(
        error_body(request_id, error),
        status_code=error.status,
        media_type="application/json",
        headers={"x-zc-request-id": request_id},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return _envelope(request, MethodNotAllowed(method=request.method))
    return _envelope(request, PathNotFound(path=request.url.path))


def _background_worker(runtime: Runtime, sqlite: bool) -> WorkerThread | LoopWorker:
    """The API process's worker: in a thread of its own, or, if asked (``worker_on_loop``) on
    SQLite with drivers that return at once, on the event loop (``LoopWorker``)."""
    settings = runtime.settings
    on_loop = sqlite and settings.worker_on_loop and LoopWorker.suits(runtime.worker)
    return (LoopWorker if on_loop else WorkerThread)(
        runtime.worker, settings.worker_interval_seconds
    )


def from_environment() -> Edge:
    """The app factory of ``zbmc serve`` (``--workers N`` runs it in each process): every
    setting, flags included, arrives through ``ZBMC_*`` environment variables."""
    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    return create_app(settings)


def create_app(settings: Settings, *, run_worker: bool | None = None) -> Edge:
    run_worker = settings.run_worker if run_worker is None else run_worker
    runtime = build_runtime(settings, server=True)
    if not is_at_head(runtime.engine):
        raise SchemaBehind(
            "the database schema is not at the latest migration; run `zbmc admin db upgrade`"
        )
    sqlite = runtime.engine.dialect.name == "sqlite"
    checkpointer = Checkpointer(runtime.engine) if sqlite else None
    pipeline = Pipeline(runtime.engine, settings, runtime.clock, checkpointer, runtime.turns)
    openapi_document = build_document(pipeline.actions)
    known_actions = {name for _service, name in pipeline.actions}
    limiter = build_limiter(
        settings.rate_limit,
        settings.rate_limit_actions,
        settings.redis_url,
        settings.redis_prefix,
        known_actions,
    )
    scrape = metrics.scrape_registry(runtime.engine, runtime.clock)

    def observe(call: Call, outcome: Outcome, seconds: float) -> None:
        metrics.observe_request(call, outcome, seconds, known_actions)
        logs.log_request(
            call.request_id,
            outcome.tenant_id,
            call.action,
            outcome.code,
            outcome.status,
            seconds,
            path=API_PREFIX + call.service,
        )

    def prometheus(_request: Request) -> Response:
        # A plain function: Starlette runs it in a thread, keeping the scrape's queries off
        # the event loop.
        return Response(metrics.render(scrape), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(openapi_document)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        try:
            with runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            ready = is_at_head(runtime.engine)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        body = {"status": "ok" if ready else "schema behind"}
        return JSONResponse(body, status_code=200 if ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        background = _background_worker(runtime, sqlite) if run_worker else None
        if background is not None:
            background.start()
        if checkpointer is not None:
            checkpointer.start()
        # Everything built so far lives as long as the process: take it out of the cyclic
        # garbage collector's view, so that a full collection scans only what requests create
        # (one took ~70 ms with the ~100k startup objects in view, a stall for every request
        # in flight).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app built and stopped in a longer-lived process (tests)
            if background is not None:
                background.stop()
            if checkpointer is not None:
                checkpointer.stop()
            if limiter is not None:
                await limiter.close()
            edge.batcher.close()
            pipeline.close()
            if runtime.turns is not None:
                runtime.turns.close()
            runtime.engine.dispose()

    shell = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
            Route("/openapi.json", openapi),
            *admin_routes(runtime.engine, runtime.clock, settings.admin_token),
            *AccountApi(runtime.engine, runtime.clock, settings).routes(),
            # the web console: static files from the package, calling the API (docs/console.md)
            Route("/console", lambda _request: RedirectResponse("/console/", status_code=308)),
            Mount("/console", app=StaticFiles(packages=[("zbmc", "console")], html=True)),
        ],
        exception_handlers={404: _http_error, 405: _http_error},
        lifespan=lifespan,
    )
    # reader threads on PostgreSQL only: SQLite's statements run in process (no waits to overlap)
    edge = Edge(
        pipeline,
        shell,
        observe,
        limiter.admit if limiter is not None else None,
        0 if sqlite else settings.reader_threads,
    )
    return edge
