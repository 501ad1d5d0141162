"""The serving API (search now, recommendations later): a FastAPI app separate from the
transactional one, so heavy in-memory indexes scale and restart on their own.

It speaks like the transactional API: application/problem+json errors naming the field
(`transactional.errors`, rendered by `transactional.api.app.problem`), X-Correlation-ID on every
response, the same Prometheus request metrics, and bearer tokens from /v1/auth/login read by the
same dependency. The search index loads in a background thread, so the process answers /healthz at
once and /readyz (and searches) once the index is in memory."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import Gauge
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.config import get_search_settings
from serving.routes import ROUTERS
from serving.search.service import SearchService
from serving.search.vectors import limit_compute_threads
from transactional.api import openapi
from transactional.api.app import CORRELATION_ID, LATENCY, REQUESTS, problem
from transactional.config import get_settings
from transactional.errors import ProblemError
from transactional.observability import configure_logging, log

# Where FastAPI says an invalid value came from; the field's own name is what callers need.
_LOCATIONS = {"query", "path", "header", "body", "cookie"}


def _field(location: tuple) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "request"


INDEX_PRODUCTS = Gauge("marketlake_search_index_products", "Products in this process's search index")
INDEX_STALENESS = Gauge("marketlake_search_seconds_since_refresh", "Seconds since the index last read the change feeds")


def _ready(app: FastAPI) -> bool:
    return app.state.search is not None and app.state.search.ready


def _staleness(app: FastAPI) -> float:
    seconds = app.state.search.seconds_since_refresh() if app.state.search is not None else None
    return math.nan if seconds is None else seconds


def create_app(search: SearchService | None = None) -> FastAPI:
    """The app; `search` is an already opened service (tests), otherwise one is started here."""
    configure_logging(get_settings().log_level)
    limit_compute_threads(get_search_settings().compute_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if search is not None:
            yield
            return
        service = app.state.search = SearchService(get_search_settings())
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="Marketlake serving API", version="0.1.0", lifespan=lifespan,
                  description="Product search (and, later, recommendations) for shoppers.")
    app.state.search = search
    INDEX_PRODUCTS.set_function(lambda: len(app.state.search.engine.index) if _ready(app) else 0)
    INDEX_STALENESS.set_function(lambda: _staleness(app))

    @app.middleware("http")
    async def correlation_and_metrics(request: Request, call_next):
        given = request.headers.get("X-Correlation-ID", "")
        request.state.correlation_id = given if CORRELATION_ID.fullmatch(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=request.state.correlation_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # a bug: answer with a problem the caller can quote, and log it with its trace
            log.exception("unhandled error", method=request.method, path=request.url.path)
            response = problem(request, 500, "Internal server error",
                               "an unexpected error occurred; quote the correlation_id when reporting it")
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, response.status_code).inc()
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        response.headers["X-Correlation-ID"] = request.state.correlation_id
        return response

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError):
        return problem(request, exc.status, exc.title, exc.detail, exc.errors, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        errors = [{"field": _field(error["loc"]), "reason": error["msg"]} for error in exc.errors()]
        return problem(request, 422, "Validation failed", "the request has invalid fields", errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        return problem(request, exc.status_code, str(exc.detail), str(exc.detail),
                       headers=getattr(exc, "headers", None))

    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    return app
