"""The transactional API application: problem+json errors, correlation ids, metrics, routers."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from transactional.api import openapi
from transactional.api.deps import log_identity
from transactional.api.routes import ROUTERS
from transactional.config import get_settings
from transactional.errors import ProblemError
from transactional.observability import configure_logging, log

PROBLEM = openapi.PROBLEM_MEDIA_TYPE
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
# A caller's correlation id is echoed in headers and logs, so only plain tokens are trusted.
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUESTS = Counter("marketlake_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("marketlake_http_request_seconds", "HTTP request latency", ["method", "route"])


def problem(request: Request, status: int, title: str, detail: str, errors=None, headers=None, **extra) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "errors": errors or [],
        "correlation_id": request.state.correlation_id if hasattr(request.state, "correlation_id") else None,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    return ".".join(parts) or "body"


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Marketlake transactional API",
        version="0.1.0",
        description="Tenants, identity, catalog, inventory, carts, checkout, payments, reviews and shopper events.",
    )

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
            response = problem(request, 500, "Internal server error", "an unexpected error occurred; quote the "
                               "correlation_id when reporting it")
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, response.status_code).inc()
        LATENCY.labels(request.method, route).observe(elapsed)
        response.headers["X-Correlation-ID"] = request.state.correlation_id
        principal = getattr(request.state, "principal", None)
        if principal is not None:  # bound in a dependency's task, which this one does not see
            structlog.contextvars.bind_contextvars(**log_identity(principal))
        log.info("request", method=request.method, route=route, status=response.status_code,
                 ms=round(elapsed * 1000, 2))
        return response

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError):
        return problem(request, exc.status, exc.title, exc.detail, exc.errors, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        errors = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return problem(request, 422, "Validation failed", "the request has invalid fields", errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        return problem(request, exc.status_code, str(exc.detail), str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def on_integrity(request: Request, exc: IntegrityError):
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or "constraint"
        return problem(request, 409, "Conflict", f"the change conflicts with existing data ({constraint})",
                       [{"field": constraint, "reason": "violates a database constraint"}])

    @app.exception_handler(DataError)
    async def on_data_error(request: Request, exc: DataError):
        return problem(request, 422, "Invalid value", "a value is out of range or malformed",
                       [{"field": "body", "reason": str(exc.orig).splitlines()[0]}])

    @app.exception_handler(OperationalError)
    async def on_operational_error(request: Request, exc: OperationalError):
        # A deadlock or serialization failure lost a race with another request: retrying succeeds.
        if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return problem(request, 409, "Conflict", "a concurrent change won; retry the request",
                           [{"field": "request", "reason": "concurrent update"}], {"Retry-After": "1"})
        log.error("database unavailable", error=str(exc.orig).splitlines()[0])
        return problem(request, 503, "Service unavailable", "the database is unavailable; retry shortly",
                       headers={"Retry-After": "5"})

    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    return app
