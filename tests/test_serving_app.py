"""The serving app as a process runs it: probes, metrics, correlation ids, problem+json, and the
background index that builds itself at start-up and follows the change feed."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.config import SearchSettings, get_search_settings
from serving.search.service import SearchService
from serving.search.vectors import shared_embedder
from transactional.db import PLATFORM, session_scope
from transactional.models import ProductStatus, Tenant, TenantStatus
from transactional.services.catalog import ProductData, SkuData, create_product

PROBLEM = "application/problem+json"


@pytest.fixture
def unready(db, tmp_path):
    service = SearchService(SearchSettings(), embedder=shared_embedder(), snapshot_dir=tmp_path)
    with TestClient(create_app(service)) as client:
        yield client


def test_liveness_answers_while_the_index_is_not_ready(unready):
    assert unready.get("/healthz").json() == {"status": "ok"}
    ready = unready.get("/readyz")
    assert ready.status_code == 503 and ready.headers["content-type"] == PROBLEM
    search = unready.get("/v1/search", params={"q": "kettle"})
    assert search.status_code == 503
    assert search.json()["errors"] == [{"field": "index", "reason": "the search index is starting; retry shortly"}]


def test_correlation_ids_are_echoed_or_made(unready):
    assert unready.get("/healthz", headers={"X-Correlation-ID": "abc-123"}).headers["X-Correlation-ID"] == "abc-123"
    made = unready.get("/healthz", headers={"X-Correlation-ID": "bad id\twith spaces"}).headers["X-Correlation-ID"]
    assert made != "bad id\twith spaces" and len(made) == 32
    problem = unready.get("/v1/search", params={"limit": 0}, headers={"X-Correlation-ID": "req-9"}).json()
    assert problem["correlation_id"] == "req-9" and problem["errors"][0]["field"] == "limit"


def test_metrics_count_requests_by_route(unready):
    unready.get("/v1/search", params={"limit": 0})
    metrics = unready.get("/metrics").text
    assert 'marketlake_http_requests_total{method="GET",route="/v1/search",status="422"}' in metrics


def test_openapi_documents_problem_responses(unready):
    operation = unready.get("/openapi.json").json()["paths"]["/v1/search"]["get"]
    assert PROBLEM in operation["responses"]["4XX"]["content"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {
        "q", "category", "tenant_id", "brand", "price_min", "price_max", "rating_min", "in_stock", "sort", "cursor"}


def _kettle_store() -> uuid.UUID:
    with session_scope(PLATFORM) as session:
        tenant = Tenant(slug=f"kettles-{uuid.uuid4().hex[:6]}", legal_name="Kettles Ltd", store_name="Kettles",
                        status=TenantStatus.active)
        session.add(tenant)
        session.flush()
        return tenant.id


def _add_kettle(tenant_id: uuid.UUID, title: str) -> str:
    with session_scope(PLATFORM) as session:
        return str(create_product(session, tenant_id=tenant_id, actor_user_id=None, data=ProductData(
            title=title, status=ProductStatus.active,
            skus=[SkuData(sku_code=uuid.uuid4().hex[:10], price=Decimal("30.00"), currency="USD")])))


def _wait_for(client: TestClient, path: str, params: dict, done, deadline_seconds: float = 300.0):
    """Poll until `done` (a generous deadline only guards against hanging: nothing here is timed)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        response = client.get(path, params=params)
        if done(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.fixture(scope="session")
def loaded_model():
    """The process's MiniLM, loaded once (the app's index uses the same shared instance)."""
    embedder = shared_embedder()
    embedder.embed(["warm up"])
    return embedder


@pytest.mark.slow
def test_the_app_builds_its_index_and_follows_the_catalog(db, tmp_path, monkeypatch, loaded_model):
    monkeypatch.setenv("MARKETLAKE_SEARCH_SNAPSHOT_DIR", str(tmp_path / "snapshot"))
    monkeypatch.setenv("MARKETLAKE_SEARCH_REFRESH_SECONDS", "0.5")
    get_search_settings.cache_clear()
    tenant_id = _kettle_store()
    _add_kettle(tenant_id, "Copper kettle")
    try:
        with TestClient(create_app()) as client:
            ready = _wait_for(client, "/readyz", {}, lambda r: r.status_code == 200)
            assert ready.json()["products"] == 1
            assert (tmp_path / "snapshot" / "state.json").exists()
            assert "marketlake_search_index_products 1.0" in client.get("/metrics").text

            new_id = _add_kettle(tenant_id, "Enamel kettle")
            found = _wait_for(client, "/v1/search", {"q": "enamel kettle"},
                              lambda r: any(item["id"] == new_id for item in r.json()["items"]))
            assert found.json()["items"][0]["id"] == new_id
    finally:
        get_search_settings.cache_clear()
