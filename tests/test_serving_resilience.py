"""Resilience and observability of both apps: the serving app's time limit and per-storefront rate
limits, and OpenTelemetry spans carrying the correlation id."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from serving.app import create_app as create_serving_app
from serving.config import SearchSettings, get_serving_settings
from serving.resilience import storefront_buckets
from serving.search.service import SearchService
from tests.test_observability import requests_total
from transactional.api.app import create_app as create_transactional_app
from transactional.observability import configure_tracing

PROBLEM = "application/problem+json"


@pytest.fixture
def serving_settings(monkeypatch):
    """Set MARKETLAKE_SERVING_* variables for an app built inside the test."""
    def configure(**values):
        for name, value in values.items():
            monkeypatch.setenv(f"MARKETLAKE_SERVING_{name.upper()}", str(value))
        get_serving_settings.cache_clear()

    yield configure
    monkeypatch.undo()
    get_serving_settings.cache_clear()
    storefront_buckets.reset()


def _serving_client(tmp_path) -> TestClient:
    """The serving app around a search index that never loads (no model is needed)."""
    return TestClient(create_serving_app(SearchService(SearchSettings(), snapshot_dir=tmp_path)))


def _release_after_timeout(route: str, release: threading.Event) -> None:
    labels = {"method": "GET", "route": route}
    before = REGISTRY.get_sample_value("marketlake_http_request_timeouts_total", labels) or 0
    while (REGISTRY.get_sample_value("marketlake_http_request_timeouts_total", labels) or 0) == before:
        time.sleep(0.01)
    release.set()


def test_a_request_running_past_the_time_limit_answers_503_flagged(db, tmp_path, serving_settings):
    serving_settings(request_timeout_seconds=0.1)
    release = threading.Event()
    with _serving_client(tmp_path) as client:
        @client.app.get("/test/stuck")
        def stuck() -> dict[str, str]:
            release.wait(30)  # held until the test has its answer
            return {"status": "late"}

        # The stuck call runs on after its 503 is sent; the test client returns only once it
        # ends, so it is released as soon as the time limit has been counted.
        threading.Thread(target=_release_after_timeout, args=("/test/stuck", release), daemon=True).start()
        response = client.get("/test/stuck", headers={"X-Correlation-ID": "slow-1"})
        assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["timed_out"] is True and body["correlation_id"] == "slow-1"
        assert body["errors"] == [{"field": "request", "reason": "timed out"}]
        assert response.headers["Retry-After"] == "1"
        assert requests_total(client, "/test/stuck", "503") == 1
        assert 'marketlake_http_request_timeouts_total{method="GET",route="/test/stuck"}' in client.get("/metrics").text
        assert client.get("/healthz").status_code == 200


def test_each_storefront_has_its_own_request_budget(db, tmp_path, serving_settings):
    serving_settings(tenant_requests_per_minute=2)
    busy, quiet = uuid.uuid4(), uuid.uuid4()
    with _serving_client(tmp_path) as client:
        @client.app.get("/test/storefront")
        def storefront(tenant_id: uuid.UUID | None = None) -> dict[str, str]:
            return {"tenant_id": str(tenant_id)}

        def call(tenant_id):
            return client.get("/test/storefront", params={"tenant_id": str(tenant_id)})

        first, second, third = call(busy), call(busy), call(busy)
        assert [first.status_code, second.status_code] == [200, 200]
        assert first.headers["X-RateLimit-Limit"] == "2" and second.headers["X-RateLimit-Remaining"] == "0"
        assert third.status_code == 429 and third.headers["content-type"] == PROBLEM
        assert third.json()["errors"][0]["field"] == "tenant_id" and int(third.headers["Retry-After"]) >= 1
        assert call(quiet).status_code == 200
        # every route is covered: a search for the busy store is refused before it runs
        assert client.get("/v1/search", params={"tenant_id": str(busy)}).status_code == 429
        # marketplace-wide requests are nobody's: never charged, never limited
        assert all(client.get("/test/storefront").status_code == 200 for _ in range(3))
        assert "X-RateLimit-Limit" not in client.get("/test/storefront").headers


# --- tracing -------------------------------------------------------------------------------------

@pytest.fixture
def spans():
    """Finished spans of the process's tracer provider (installed here unless OTEL_* did)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter(max_spans=500)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later spans of this process are not kept


@pytest.mark.parametrize("app", ["transactional", "serving"])
def test_every_request_makes_a_server_span_carrying_the_correlation_id(db, tmp_path, spans, app):
    with (_serving_client(tmp_path) if app == "serving" else TestClient(create_transactional_app())) as client:
        assert client.get("/healthz", headers={"X-Correlation-ID": f"trace-{app}"}).status_code == 200
        made = client.get("/healthz").headers["X-Correlation-ID"]
    servers = [span for span in spans.get_finished_spans() if span.kind == trace.SpanKind.SERVER]
    assert [span.attributes["marketlake.correlation_id"] for span in servers] == [f"trace-{app}", made]
    assert all(span.name == "GET /healthz" and span.attributes["http.route"] == "/healthz" for span in servers)
    assert servers[0].context.trace_id != servers[1].context.trace_id


def test_an_unknown_exporter_name_is_refused(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
    with pytest.raises(ValueError, match="carrier-pigeon"):
        configure_tracing.__wrapped__("marketlake-test")
