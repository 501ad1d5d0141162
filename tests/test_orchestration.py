"""The Dagster definitions: they load with every stage wired; the change sensor asks for a refresh
covering the days of new events; a successful refresh materialises the feature store; a failed run
sends a notification; the whole graph materialises
in-process on a tiny generated marketplace, and a failing blocking quality gate stops everything
downstream of it."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import text

from tests.factories import buyer
from tests.factories_analytics import point_lakehouse_at, tiny_marketplace
from transactional.db import PLATFORM, session_scope


@pytest.fixture(scope="module")
def definitions():
    from orchestration.definitions import defs

    return defs


@pytest.fixture
def empty_lakehouse(tmp_path):
    previous = os.environ.get("MARKETLAKE_LAKEHOUSE_URI")
    point_lakehouse_at(tmp_path / "lakehouse")
    yield tmp_path / "lakehouse"
    if previous is None:
        os.environ.pop("MARKETLAKE_LAKEHOUSE_URI", None)
    else:
        point_lakehouse_at(previous)


def _keys(definitions, first: str) -> set[str]:
    graph = definitions.get_repository_def().asset_graph
    return {key.to_user_string() for key in graph.get_all_asset_keys() if key.path[0] == first}


def test_definitions_wire_every_stage_with_checks_sensors_and_schedules(definitions):
    repository = definitions.get_repository_def()
    assert _keys(definitions, "bronze") == {"bronze/outbox", "bronze/shopper_events"}
    assert "silver/sub_orders" in _keys(definitions, "silver")
    assert "gold/seller_daily" in _keys(definitions, "gold")
    assert "warehouse/events" in _keys(definitions, "warehouse")
    assert {"seller_analytics/seller_daily_sales", "seller_analytics/seller_settlements"} <= _keys(
        definitions, "seller_analytics")
    assert "platform_analytics/platform_search_performance" in _keys(definitions, "platform_analytics")
    refresh = repository.get_job("refresh")
    selected = {key.to_user_string() for key in refresh.asset_layer.selected_asset_keys}
    assert {"bronze/outbox", "warehouse/events", "dashboards/seller_dashboards"} <= selected
    checks = {f"{key.asset_key.to_user_string()}:{key.name}" for key in repository.asset_graph.asset_check_keys}
    assert "silver/orders:quality_gate" in checks and "gold/seller_daily:quality_gate" in checks
    assert any(check.startswith("seller_analytics/seller_daily_sales:unique_key") for check in checks)
    assert {sensor.name for sensor in repository.sensor_defs} == {
        "new_changes_sensor", "features_after_refresh", "notify_on_run_failure"}
    assert {(schedule.job_name, schedule.cron_schedule) for schedule in repository.schedule_defs} == {
        ("refresh", "15 2 * * *"), ("train", "30 3 * * *")}
    warehouse_events = repository.asset_graph.get(dg.AssetKey(["warehouse", "events"]))
    assert warehouse_events.partitions_def is not None and warehouse_events.backfill_policy is not None


def test_prod_resources_take_secrets_from_the_environment(monkeypatch):
    from orchestration import resources
    from transactional.config import get_settings

    monkeypatch.setenv("MARKETLAKE_ENV", "prod")
    get_settings.cache_clear()
    try:
        chosen = resources.resources()
    finally:
        monkeypatch.delenv("MARKETLAKE_ENV")
        get_settings.cache_clear()
    assert isinstance(chosen["database"].url, dg.EnvVar) and chosen["database"].url.env_var_name == "DATABASE_URL"
    assert isinstance(chosen["notifier"].webhook_url, dg.EnvVar)
    assert chosen["dbt"].target == "prod"


def test_new_events_make_the_sensor_request_a_refresh_of_their_days(client, empty_lakehouse, definitions):
    from orchestration.automation import new_changes_sensor
    from orchestration.resources import PlatformDatabase

    context = dg.build_sensor_context(resources={"database": PlatformDatabase()})
    headers = buyer(client)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    events = [{"type": "search", "event_id": str(uuid.uuid4()), "session_id": "s1", "query": "mug",
               "occurred_at": (two_days_ago + timedelta(days=day)).isoformat()} for day in (0, 2)]
    assert client.post("/v1/events", json={"events": events}, headers=headers).status_code in (200, 201, 202)

    request = new_changes_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == two_days_ago.date().isoformat()
    assert request.tags["dagster/asset_partition_range_end"] == (two_days_ago + timedelta(days=2)).date().isoformat()
    assert "shopper_events:" in request.run_key and "outbox:" in request.run_key


def test_a_failed_run_sends_a_notification(tmp_path):
    from orchestration.automation import notify_on_run_failure
    from orchestration.resources import Notifier

    @dg.op
    def broken():
        raise RuntimeError("the warehouse is on fire")

    @dg.job
    def doomed():
        broken()

    with dg.instance_for_test() as instance:
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        failure = next(event for event in result.all_events if event.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="notify_on_run_failure", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=failure, resources={"notifier": Notifier(path=str(tmp_path / "notes.jsonl"))},
        ).for_run_failure()
        notify_on_run_failure(context)
    note = json.loads((tmp_path / "notes.jsonl").read_text())
    assert note["kind"] == "run_failed" and note["job"] == "doomed" and note["run_id"] == result.run_id


def test_a_successful_refresh_materialises_the_feature_store():
    from orchestration.automation import features_after_refresh

    @dg.op
    def fine():
        return None

    @dg.job
    def refresh():
        fine()

    with dg.instance_for_test() as instance:
        result = refresh.execute_in_process(instance=instance)
        success = next(event for event in result.all_events if event.event_type == dg.DagsterEventType.RUN_SUCCESS)
        context = dg.build_run_status_sensor_context(
            sensor_name="features_after_refresh", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=success)
        request = features_after_refresh(context)
    assert request.run_key == result.run_id


@pytest.mark.slow
def test_the_whole_graph_materialises_and_a_failing_gate_stops_downstream(migrated_database, tmp_path, definitions,
                                                                          monkeypatch):
    previous = os.environ.get("MARKETLAKE_LAKEHOUSE_URI")
    market = tiny_marketplace(tmp_path / "lakehouse")
    try:
        first, last = (market.data.events["occurred_at"].min().date(), market.data.events["occurred_at"].max().date())
        refresh = definitions.resolve_job_def("refresh")
        tags = {"dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat()}
        with dg.instance_for_test() as instance:
            result = refresh.execute_in_process(instance=instance, tags=tags)
            assert result.success
            materialised = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
            assert {"bronze/shopper_events", "silver/orders", "gold/seller_daily", "warehouse/events",
                    "seller_analytics/seller_daily_sales", "platform_analytics/platform_daily_traffic",
                    "dashboards/seller_dashboards"} <= materialised
            checks = result.get_asset_check_evaluations()
            assert checks and all(check.passed for check in checks), [c for c in checks if not c.passed]
            with session_scope(PLATFORM) as session:
                dashboards = session.scalar(text("SELECT count(*) FROM analytics.seller_dashboards"))
                loaded = session.scalar(text("SELECT count(*) FROM seller_analytics.seller_daily_sales"))
            assert dashboards == market.data.tenants.height and loaded > 0

            # Every order change now looks stale to the gate: silver fails, nothing downstream runs.
            monkeypatch.setenv("MARKETLAKE_QUALITY_MAX_STALENESS_HOURS", "0.000001")
            blocked = refresh.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
            failed = {check.asset_key.to_user_string() for check in blocked.get_asset_check_evaluations()
                      if not check.passed}
            assert "silver/orders" in failed
            again = {event.asset_key.to_user_string() for event in blocked.get_asset_materialization_events()}
            assert "silver/orders" in again
            assert not again & {"gold/seller_daily", "warehouse/sub_orders", "seller_analytics/seller_daily_sales",
                                "dashboards/seller_dashboards"}
    finally:
        if previous is None:
            os.environ.pop("MARKETLAKE_LAKEHOUSE_URI", None)
        else:
            point_lakehouse_at(previous)
