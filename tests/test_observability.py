"""Correlation ids, structured JSON logs with tenant and user, health probes and Prometheus metrics."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from tests.factories import seller
from transactional.api import app as api_app
from transactional.api.deps import CurrentTenant
from transactional.api.routes import health
from transactional.config import get_settings
from transactional.observability import log

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def logged_client(db, monkeypatch):
    """A client of an app logging at INFO, with two extra routes: one that logs from a sync
    endpoint behind the seller dependencies, one that fails with an unexpected error."""
    monkeypatch.setattr(get_settings(), "log_level", "INFO")
    app = api_app.create_app()

    @app.get("/test/log-inside")
    def log_inside(tenant: CurrentTenant) -> dict[str, str]:
        log.info("inside the endpoint", store=tenant.slug)
        return {"status": "logged"}

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("deliberate failure")

    with TestClient(app) as client:
        yield client


def json_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def requests_total(client, route: str, status: str) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    family = next(family for family in families if family.name == "marketlake_http_requests")
    return sum(sample.value for sample in family.samples
               if sample.name == "marketlake_http_requests_total"
               and sample.labels == {"method": "GET", "route": route, "status": status})


def test_a_given_correlation_id_is_echoed_in_the_header_and_problem_body(client):
    response = client.get("/v1/auth/userinfo", headers={"X-Correlation-ID": "checkout-7f3a.retry:2"})
    assert response.status_code == 401
    assert response.headers["X-Correlation-ID"] == "checkout-7f3a.retry:2"
    assert response.json()["correlation_id"] == "checkout-7f3a.retry:2"


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 129, "quote\"injection"])
def test_a_missing_or_unsafe_correlation_id_is_replaced_by_a_generated_one(client, given):
    headers = {} if given is None else {"X-Correlation-ID": given}
    response = client.get("/v1/auth/userinfo", headers=headers)
    generated = response.headers["X-Correlation-ID"]
    assert GENERATED_ID.fullmatch(generated)
    assert response.json()["correlation_id"] == generated


def test_each_request_gets_its_own_generated_id(client):
    ids = {client.get("/healthz").headers["X-Correlation-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_request_logs_are_json_with_correlation_id_tenant_and_user(logged_client, capfd):
    tenant_id, headers = seller(logged_client)
    user_id = logged_client.get("/v1/auth/userinfo", headers=headers).json()["id"]
    capfd.readouterr()

    logged_client.get("/v1/tenant", headers={**headers, "X-Correlation-ID": "trace-42"})
    lines = [line for line in json_lines(capfd.readouterr().err) if line.get("correlation_id") == "trace-42"]
    assert len(lines) == 1
    assert lines[0] | {"event": "request", "route": "/v1/tenant", "status": 200, "method": "GET",
                       "tenant_id": tenant_id, "user_id": user_id, "level": "info"} == lines[0]
    assert "timestamp" in lines[0]


def test_logs_written_inside_an_endpoint_carry_the_callers_tenant(logged_client, capfd):
    tenant_id, headers = seller(logged_client)
    capfd.readouterr()
    response = logged_client.get("/test/log-inside", headers={**headers, "X-Correlation-ID": "inner-1"})
    assert response.status_code == 200
    lines = {line["event"]: line for line in json_lines(capfd.readouterr().err)}
    assert lines["inside the endpoint"]["tenant_id"] == tenant_id
    assert lines["inside the endpoint"]["correlation_id"] == "inner-1"


def test_anonymous_request_logs_carry_no_identity_from_an_earlier_request(logged_client, capfd):
    _, headers = seller(logged_client)
    logged_client.get("/v1/tenant", headers=headers)
    capfd.readouterr()
    logged_client.get("/healthz", headers={"X-Correlation-ID": "anon-1"})
    [line] = [line for line in json_lines(capfd.readouterr().err) if line.get("correlation_id") == "anon-1"]
    assert "tenant_id" not in line and "user_id" not in line


def test_an_unexpected_error_is_a_logged_problem_with_the_correlation_id(logged_client, capfd):
    response = logged_client.get("/test/crash", headers={"X-Correlation-ID": "crash-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Correlation-ID"] == "crash-1"
    assert response.json()["correlation_id"] == "crash-1"
    assert "deliberate failure" not in response.text
    lines = {line["event"]: line for line in json_lines(capfd.readouterr().err)}
    assert "RuntimeError: deliberate failure" in lines["unhandled error"]["exception"]
    assert lines["request"]["status"] == 500


def test_health_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readiness_fails_with_503_when_the_database_is_unreachable(client, monkeypatch):
    unreachable = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    monkeypatch.setattr(health, "app_engine", lambda: unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/healthz").status_code == 200


def test_metrics_count_requests_by_route_and_status_in_prometheus_text(client):
    before_ok = requests_total(client, "/healthz", "200")
    before_denied = requests_total(client, "/v1/auth/userinfo", "401")
    for _ in range(3):
        client.get("/healthz")
    client.get("/v1/auth/userinfo")

    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE marketlake_http_request_seconds histogram" in response.text
    assert requests_total(client, "/healthz", "200") == before_ok + 3
    assert requests_total(client, "/v1/auth/userinfo", "401") == before_denied + 1


def test_unmatched_paths_share_one_metrics_label(client):
    before = requests_total(client, "unmatched", "404")
    client.get("/no/such/page-1")
    client.get("/no/such/page-2")
    assert requests_total(client, "unmatched", "404") == before + 2


def test_a_lost_deadlock_is_a_retryable_409_not_a_500():
    import psycopg
    from sqlalchemy.exc import OperationalError

    from transactional.api.app import create_app

    app = create_app()

    @app.get("/deadlock-probe")
    def deadlock_probe():
        raise OperationalError("UPDATE ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))

    from fastapi.testclient import TestClient

    response = TestClient(app).get("/deadlock-probe")
    assert response.status_code == 409 and response.headers["Retry-After"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
