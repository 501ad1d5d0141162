"""The feature store end to end: gold feature snapshots built by the real pipelines from a tiny
marketplace (Delta, embedded Sail), exported and applied to a real Feast repository with a SQLite
online store; point-in-time training sets; the online interface serving uses, and what it does
when the store cannot answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable
from sqlalchemy import text
from typer.testing import CliRunner

from feature_repo.online import FeatureStoreUnavailable, OnlineFeatures
from feature_repo.store import REPO_PATH, apply, feature_store
from tests.factories_analytics import empty_database, point_lakehouse_at
from tests.lakehouse import sources
from transactional.db import owner_engine


def _feast_environment(root: Path) -> dict[str, str]:
    """A registry and SQLite online store of one test's own. (The offline exports stay where
    MARKETLAKE_HOME puts them: data sources take their path when the definitions are imported.)"""
    return {"MARKETLAKE_FEAST_REGISTRY": str(root / "registry.db"),
            "MARKETLAKE_FEAST_ONLINE_STORE": json.dumps({"type": "sqlite", "path": str(root / "online.db")})}


@pytest.fixture
def feast_home(tmp_path, monkeypatch):
    for name, value in _feast_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_an_unapplied_store_is_unavailable_not_an_error(feast_home):
    with pytest.raises(FeatureStoreUnavailable, match="ranking_v1"):
        OnlineFeatures().items(["some-product"])


def test_an_unreachable_online_store_is_unavailable(feast_home, monkeypatch):
    apply(feature_store())
    monkeypatch.setenv("MARKETLAKE_FEAST_ONLINE_STORE",
                       '{"type": "redis", "connection_string": "127.0.0.1:9"}')
    with pytest.raises(FeatureStoreUnavailable, match="item_features"):
        OnlineFeatures().items(["some-product"])
    assert OnlineFeatures().items([]) == {}


def test_the_feast_command_line_applies_the_repository_from_the_environment(feast_home):
    feast = str(Path(sys.executable).with_name("feast"))
    completed = subprocess.run([feast, "-c", str(REPO_PATH), "apply"], check=False, capture_output=True,
                               text=True, env=os.environ.copy(), timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "ranking_v1" in completed.stdout and (feast_home / "registry.db").exists()
    services = {service.name for service in feature_store().list_feature_services()}
    assert services == {"ranking_v1", "popularity_v1"}


@dataclass
class Built:
    """A tiny marketplace after two gold builds: a day ago (before the order) and now."""

    buyer: str
    tenant: str
    category: str
    mug: str
    lamp: str
    first_build: datetime
    second_build: datetime
    lakehouse: Path


def _gold(built: Built, name: str) -> list[dict]:
    return DeltaTable(str(built.lakehouse / "gold" / name)).to_pyarrow_table().to_pylist()


def _snapshot(built: Built, name: str, key: str, value: str, at: datetime) -> dict:
    [row] = [row for row in _gold(built, name) if row[key] == value and row["feature_timestamp"] == at]
    return row


@pytest.fixture(scope="module")
def built(migrated_database, tmp_path_factory):
    from pipelines import bronze, gold, silver
    from pipelines.engine import get_spark

    root = tmp_path_factory.mktemp("features")
    previous = os.environ.get("MARKETLAKE_LAKEHOUSE_URI")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _feast_environment(root / "feast").items():
            patch.setenv(name, value)
        empty_database()
        point_lakehouse_at(root / "lakehouse")
        now = datetime.now(UTC)
        store = sources.shop(products=2)
        buyer = sources.shopper()
        mug, lamp = (str(product) for product in store.product_ids)
        browsed = now - timedelta(hours=26)
        sources.events([
            {"event_type": "view", "session_id": "s1", "user_id": buyer, "product_id": mug,
             "tenant_id": store.tenant_id, "occurred_at": browsed},
            {"event_type": "add_to_cart", "session_id": "s1", "user_id": buyer, "product_id": mug,
             "tenant_id": store.tenant_id, "quantity": 2, "occurred_at": browsed + timedelta(minutes=1)},
            {"event_type": "view", "session_id": "s2", "anonymous_id": "device-1", "product_id": lamp,
             "tenant_id": store.tenant_id, "occurred_at": browsed},
        ])
        order = sources.order(buyer, store, item=0, quantity=2, review=5)
        with owner_engine().begin() as connection:  # placed two days ago, delivered 36 hours later
            connection.execute(text(
                "UPDATE sub_orders SET status = 'DELIVERED', created_at = now() - interval '48 hours',"
                " updated_at = now() - interval '12 hours' WHERE order_id = :order"), {"order": order})
        spark = get_spark()
        bronze.ingest(spark)
        silver.build_silver(spark)
        first_build = now - timedelta(hours=24)
        assert not gold.build_gold(spark, as_of=first_build).blocked
        second_build = datetime.now(UTC)
        assert not gold.build_gold(spark, as_of=second_build).blocked
        yield Built(str(buyer), str(store.tenant_id), str(store.category_id), mug, lamp, first_build,
                    second_build, root / "lakehouse")
    if previous is None:
        os.environ.pop("MARKETLAKE_LAKEHOUSE_URI", None)
    else:
        point_lakehouse_at(Path(previous))


@pytest.mark.slow
def test_user_snapshots_hold_recency_frequency_spend_and_affinities_as_of_each_build(built):
    before = _snapshot(built, "user_features", "user_key", built.buyer, built.first_build)
    assert (before["events_30d"], before["sessions_30d"]) == (2, 1)
    assert (before["orders_total"], before["spend_total"]) == (0, 0)
    assert before["days_since_last_order"] is None and before["avg_order_value"] is None
    assert before["days_since_last_event"] == pytest.approx(119 / 1440)  # the add_to_cart, 1h59 before

    after = _snapshot(built, "user_features", "user_key", built.buyer, built.second_build)
    assert (after["orders_total"], after["orders_90d"]) == (1, 1)
    assert (after["spend_total"], after["avg_order_value"]) == (20, 20)
    assert after["days_since_last_order"] < 0.01
    assert after["top_categories"] == [built.category] and after["top_category_shares"] == [1.0]
    anonymous = _snapshot(built, "user_features", "user_key", "anon:device-1", built.second_build)
    assert (anonymous["events_30d"], anonymous["orders_total"]) == (1, 0)
    assert {row["feature_date"] for row in _gold(built, "user_features")} == {
        built.first_build.date(), built.second_build.date()}


@pytest.mark.slow
def test_item_and_seller_snapshots_hold_popularity_conversion_rating_price_stock_and_fulfilment(built):
    # Products and the seller did not exist a day ago: the first build has no row for them.
    assert {row["feature_timestamp"] for row in _gold(built, "item_features")} == {built.second_build}
    mug = _snapshot(built, "item_features", "product_id", built.mug, built.second_build)
    assert (mug["popularity_1d"], mug["popularity_7d"], mug["popularity_30d"]) == (0, 5, 5)  # view 1 + cart 4
    assert (mug["unique_users_1d"], mug["unique_users_7d"], mug["views_30d"]) == (0, 1, 1)
    assert mug["conversion_rate_30d"] == 1.0  # the one shopper who looked at it bought it
    assert (mug["rating_avg"], mug["rating_count"], mug["price"], mug["currency"]) == (5, 1, 10, "USD")
    assert (mug["stock_available"], mug["in_stock"], mug["tenant_id"]) == (50, True, built.tenant)
    lamp = _snapshot(built, "item_features", "product_id", built.lamp, built.second_build)
    assert (lamp["conversion_rate_30d"], lamp["rating_avg"], lamp["rating_count"]) == (0, None, 0)
    assert lamp["price"] == 11

    seller = _snapshot(built, "seller_features", "tenant_id", built.tenant, built.second_build)
    assert (seller["seller_rating_avg"], seller["seller_rating_count"]) == (5, 1)
    assert seller["seller_orders_30d"] == 1
    assert seller["delivered_90d"] == 1 and seller["fulfilment_hours_avg"] == pytest.approx(36, abs=0.01)


@pytest.mark.slow
def test_rebuilding_a_day_keeps_one_row_per_entity_and_the_days_latest_build(built):
    from pipelines import gold
    from pipelines.engine import get_spark

    def snapshots() -> list[dict]:
        rows = _gold(built, "user_features")
        return sorted(rows, key=lambda row: (row["user_key"], row["feature_timestamp"]))

    stored = snapshots()
    assert not gold.build_gold(get_spark(), as_of=built.second_build).blocked
    assert snapshots() == stored
    earlier_that_day = max(built.second_build - timedelta(microseconds=1),
                           datetime.combine(built.second_build.date(), datetime.min.time(), UTC))
    assert not gold.build_gold(get_spark(), as_of=earlier_that_day).blocked
    latest = {(row["user_key"], row["feature_date"]): row["feature_timestamp"] for row in snapshots()}
    assert latest[(built.buyer, built.second_build.date())] == built.second_build
    assert len(latest) == len(stored)


@pytest.mark.slow
def test_gold_feature_tables_hold_every_feature_their_views_declare(built):
    from feature_repo import repo

    for view in repo.FEATURE_VIEWS:
        table = view.batch_source.name
        renamed = {feature: column for column, feature in view.batch_source.field_mapping.items()}
        columns = set(DeltaTable(str(built.lakehouse / "gold" / table)).schema().to_arrow().names)
        assert {renamed.get(field.name, field.name) for field in view.schema} <= columns, table
        assert set(view.join_keys) | {"feature_timestamp"} <= columns


@pytest.fixture(scope="module")
def materialised(built):
    """The `features` Dagster job: export, `feast apply`, incremental materialisation."""
    from orchestration.definitions import defs

    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("features").execute_in_process(instance=instance)
    assert result.success
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


@pytest.mark.slow
def test_the_features_job_materialises_the_newest_snapshot_online(built, materialised):
    assert materialised == {"feast/offline_features", "feast/registry", "feast/online_store"}
    online = OnlineFeatures()
    items = online.items([built.mug, "never-seen"])
    mug = items[built.mug]
    assert (mug["seller_id"], mug["popularity_7d"]) == (built.tenant, 5)
    assert (mug["price"], mug["in_stock"]) == (10, True)
    assert (mug["seller_rating_avg"], mug["fulfilment_hours_avg"]) == (5, pytest.approx(36, abs=0.01))
    assert set(items["never-seen"]) == set(mug) and not any(items["never-seen"].values())
    shopper = online.user(built.buyer)
    assert (shopper["spend_total"], shopper["orders_total"]) == (20, 1)
    assert shopper["top_categories"] == [built.category]


@pytest.mark.slow
def test_training_sets_join_the_snapshot_from_before_each_label_never_a_later_one(built, materialised):
    between = built.first_build + timedelta(hours=1)  # after the first build; before the order, second build
    after = built.second_build + timedelta(minutes=1)
    labels = pd.DataFrame({"user_key": [built.buyer, built.buyer], "product_id": [built.mug, built.mug],
                           "event_timestamp": [between, after]})
    training = feature_store().get_historical_features(
        entity_df=labels, features=["user_features:spend_total", "user_features:orders_total",
                                    "item_features:popularity_7d"]).to_df().sort_values("event_timestamp")
    assert training["spend_total"].tolist() == [0, 20]  # the later order's spend does not leak back
    assert training["orders_total"].tolist() == [0, 1]
    assert pd.isna(training["popularity_7d"].iloc[0]) and training["popularity_7d"].iloc[1] == 5


@pytest.mark.slow
def test_features_commands_apply_and_materialise(built, materialised):
    from orchestration.cli import app

    runner = CliRunner()
    applied = runner.invoke(app, ["features", "apply"])
    assert applied.exit_code == 0, applied.output
    assert "ranking_v1" in applied.stdout
    since = built.first_build.strftime("%Y-%m-%d")
    loaded = runner.invoke(app, ["features", "materialize", "--start", since])
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout[loaded.stdout.index("{"):])["exported_rows"]["item_features"] == 2
    backwards = runner.invoke(app, ["features", "materialize", "--start", "2030-01-01",
                                    "--end", "2029-01-01"])
    assert backwards.exit_code == 2 and "--start" in backwards.output


@pytest.mark.slow
def test_a_postgres_online_store_is_a_configuration_change_only(built, materialised, monkeypatch):
    from sqlalchemy.engine import make_url

    from transactional.config import get_settings
    from transactional.embedded_pg import database_url

    url = make_url(database_url(get_settings()))
    monkeypatch.setenv("MARKETLAKE_FEAST_ONLINE_STORE", json.dumps({
        "type": "postgres", "host": url.host, "port": url.port, "database": url.database,
        "user": url.username, "password": url.password or "", "db_schema": "feast_online",
        "sslmode": "disable"}))
    store = feature_store()
    apply(store)
    store.materialize(start_date=built.first_build - timedelta(days=1), end_date=datetime.now(UTC))
    mug = OnlineFeatures().items([built.mug])[built.mug]
    assert (mug["price"], mug["seller_rating_avg"]) == (10, 5)
    with owner_engine().connect() as connection:
        tables = connection.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'feast_online'")).scalars()
        assert "marketlake_item_features" in set(tables)
