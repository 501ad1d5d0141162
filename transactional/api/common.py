"""What both HTTP apps (transactional and serving) share, installed by `install_common`:

- errors as application/problem+json (RFC 9457) naming the offending field, never a bare 500:
  domain errors (`transactional.errors`), invalid parameters, HTTP errors, database conflicts,
  bad values and an unreachable database;
- an X-Correlation-ID on every response (the caller's, when it is a plain token, else a new one),
  bound into every log line and set on the request's OpenTelemetry span;
- Prometheus request counts and latencies by route, and one JSON access-log line per request;
- OpenTelemetry server spans (exporter chosen by the standard OTEL_* variables, see
  `transactional.observability.configure_tracing`);
- optionally a time limit per request: past it the caller gets a 503 problem flagged
  `timed_out: true` with Retry-After. Only for read-only apps (serving): the work itself cannot be
  interrupted (a sync endpoint runs in a thread), it finishes in the background and its result is
  dropped, which would be wrong for a write the caller was told had failed.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transactional.api import openapi
from transactional.api.deps import log_identity
from transactional.errors import ProblemError
from transactional.observability import configure_tracing, log

PROBLEM = openapi.PROBLEM_MEDIA_TYPE
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
# A caller's correlation id is echoed in headers and logs, so only plain tokens are trusted.
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUESTS = Counter("marketlake_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("marketlake_http_request_seconds", "HTTP request latency", ["method", "route"])
TIMEOUTS = Counter("marketlake_http_request_timeouts_total", "Requests answered 503 for running out of time",
                   ["method", "route"])
# Where FastAPI says an invalid value came from. The parameter's own name is what callers need,
# except for headers and cookies, whose names could be mistaken for a body field.
_IMPLIED_LOCATIONS = {"query", "path", "body"}


def problem(request: Request, status: int, title: str, detail: str, errors=None, headers=None,
            **extra) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "errors": errors or [],
        "correlation_id": getattr(request.state, "correlation_id", None),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def field_name(location: tuple) -> str:
    """`limit` for ('query', 'limit'), `events.3.query` for ('body', 'events', 3, 'query'),
    `header.Idempotency-Key` for ('header', 'Idempotency-Key')."""
    parts = [str(part) for part in location]
    if parts and parts[0] in _IMPLIED_LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _correlation_id(scope: Scope) -> str:
    given = Headers(scope=scope).get("X-Correlation-ID", "")
    return given if CORRELATION_ID.fullmatch(given) else uuid.uuid4().hex


def _bind_request_context(correlation_id: str) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("marketlake.correlation_id", correlation_id)
        structlog.contextvars.bind_contextvars(trace_id=trace.format_trace_id(span.get_span_context().trace_id))


def _timed_out(request: Request, seconds: float) -> JSONResponse:
    return problem(request, 503, "Service unavailable", f"the request took longer than {seconds:g} s; retry shortly",
                   [{"field": "request", "reason": "timed out"}], {"Retry-After": "1"}, timed_out=True)


def _route(scope: Scope) -> str:
    """The matched route's path template (a bounded metrics label), once routing has run."""
    return getattr(scope.get("route"), "path", "unmatched")


class RequestContextMiddleware:
    """Correlation id, metrics, access log and time limit around every HTTP request. Plain ASGI
    (not `BaseHTTPMiddleware`, which runs the app in a task of its own and re-streams its response):
    it sits on every request's path, so it costs a header edit and a timer, nothing more."""

    def __init__(self, app: ASGIApp, request_timeout: float | None = None) -> None:
        self.app = app
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = _correlation_id(scope)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        _bind_request_context(correlation_id)
        started = time.perf_counter()
        status: int | None = None
        deadline = asyncio.timeout(self.request_timeout)

        async def send_with_correlation_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Correlation-ID", correlation_id)
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, send_with_correlation_id)
        except Exception as error:
            if status is not None:
                raise  # the answer has begun: nothing better can be sent
            await self._failure(scope, error, deadline.expired())(scope, receive, send_with_correlation_id)
        elapsed = time.perf_counter() - started
        route = _route(scope)
        REQUESTS.labels(scope["method"], route, status).inc()
        LATENCY.labels(scope["method"], route).observe(elapsed)
        principal = scope["state"].get("principal")
        if principal is not None:  # bound in a dependency's task, which this one does not see
            structlog.contextvars.bind_contextvars(**log_identity(principal))
        log.info("request", method=scope["method"], route=route, status=status, ms=round(elapsed * 1000, 2))

    def _failure(self, scope: Scope, error: Exception, expired: bool) -> JSONResponse:
        request = Request(scope)
        if isinstance(error, TimeoutError) and expired:
            TIMEOUTS.labels(scope["method"], _route(scope)).inc()
            return _timed_out(request, self.request_timeout)
        # A bug (the endpoint's own TimeoutError too): a problem the caller can quote, logged with its trace.
        log.exception("unhandled error", method=scope["method"], path=scope["path"], exc_info=error)
        return problem(request, 500, "Internal server error",
                       "an unexpected error occurred; quote the correlation_id when reporting it")


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError):
        return problem(request, exc.status, exc.title, exc.detail, exc.errors, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        errors = [{"field": field_name(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return problem(request, 422, "Validation failed", "the request has invalid fields", errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        return problem(request, exc.status_code, str(exc.detail), str(exc.detail),
                       headers=getattr(exc, "headers", None))

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


def install_common(app: FastAPI, *, service_name: str, request_timeout: float | None = None) -> None:
    """Errors, correlation ids, metrics, access log, traces (and a time limit) for `app`; call it
    before adding routers. `openapi.install` documents the problem responses."""
    app.add_middleware(RequestContextMiddleware, request_timeout=request_timeout)
    _install_handlers(app)
    configure_tracing(service_name)
    # Spans go to whatever provider is global when they start (a proxy until one is set), so
    # the exporter can be chosen after the app is built. The ASGI receive/send sub-spans add
    # nothing for request/response APIs.
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
