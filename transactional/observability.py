"""Structured JSON logs carrying correlation id, tenant and user (structlog contextvars), and
OpenTelemetry tracing configured by the standard OTEL_* environment variables."""

from __future__ import annotations

import logging
import os
import sys
from functools import cache
from importlib.metadata import entry_points

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr. Loggers are not cached and look up stderr when made, so configuring
    again (another app, a test) and redirecting stderr take effect at once, for a negligible
    cost per line."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


log = structlog.get_logger("marketlake")


# `otlp` is registered by the opentelemetry-exporter-otlp bundle, which adds gRPC; the HTTP
# exporter installed here registers only its own name.
_EXPORTER_ALIASES = {"otlp": "otlp_proto_http"}


def _exporter_names() -> list[str]:
    names = (name.strip() for name in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(","))
    return [_EXPORTER_ALIASES.get(name, name) for name in names if name not in ("", "none")]


@cache
def configure_tracing(service_name: str) -> None:
    """Install the process's tracer provider as OTEL_* variables describe, once per process.

    `OTEL_TRACES_EXPORTER`: `none` (the default: no provider is installed, spans are no-ops and
    cost next to nothing), `console`, `otlp` (OTLP over HTTP; `OTEL_EXPORTER_OTLP_ENDPOINT` and
    the other OTLP variables apply), or a comma-separated list. `OTEL_SERVICE_NAME` and
    `OTEL_RESOURCE_ATTRIBUTES` override the service name; `OTEL_SDK_DISABLED=true` turns it off.
    Exporters are found by the `opentelemetry_traces_exporter` entry points, as the SDK's own
    auto-configuration does, so any installed exporter works by its usual name."""
    names = _exporter_names()
    if not names or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            raise ValueError(f"OTEL_TRACES_EXPORTER names '{name}', which no installed package provides")
        provider.add_span_processor(BatchSpanProcessor(next(iter(found)).load()()))
    trace.set_tracer_provider(provider)
