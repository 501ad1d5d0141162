"""Silver: typed current state and history, idempotent and never overwritten by older changes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from sqlalchemy import text

from pipelines import bronze, silver, tables
from tests.lakehouse import sources
from transactional.db import owner_engine


def _build(spark):
    bronze.ingest(spark)
    return silver.build_silver(spark)


def _rows(spark, table: str) -> list[dict]:
    frame = tables.read(spark, silver.silver_uri(table))
    return sorted((row.asDict() for row in frame.collect()), key=lambda row: json.dumps(row, default=str))


def test_silver_holds_the_current_state_of_each_entity(lakehouse, spark):
    store = sources.shop(products=2)
    buyer = sources.shopper(email="someone@mail.example.com")
    sources.order(buyer, store, item=1, quantity=3, review=4)
    sources.reprice(store.sku_ids[0], "12.50")
    _build(spark)

    skus = {row["sku_id"]: row for row in _rows(spark, "skus")}
    assert str(skus[str(store.sku_ids[0])]["price"]) == "12.50"
    assert all(row["tenant_id"] == str(store.tenant_id) for row in skus.values())
    [item] = _rows(spark, "order_items")
    assert item["quantity"] == 3 and item["product_id"] == str(store.product_ids[1])
    [order] = _rows(spark, "orders")
    assert order["shipping_city"] == "Lyon" and "shipping_address" not in order
    [review] = _rows(spark, "reviews")
    assert review["rating"] == 4
    users = _rows(spark, "users")
    assert {row["user_id"] for row in users} == {str(buyer)}
    assert users[0]["email_pseudonym"].startswith("pii:") and "email" not in users[0]


def test_product_history_and_price_history_are_scd2(lakehouse, spark):
    store = sources.shop(products=1)
    product, sku = store.product_ids[0], store.sku_ids[0]
    _build(spark)
    sources.retitle(product, "Better title")
    sources.reprice(sku, "15.00")
    sources.reprice(sku, "15.00")  # no change: the trigger writes nothing
    _build(spark)
    sources.reprice(sku, "9.99")
    _build(spark)

    history = sorted(_rows(spark, "product_history"), key=lambda row: row["valid_from"])
    assert history[0]["title"].startswith("Product ") and history[-1]["title"] == "Better title"
    assert [row["is_current"] for row in history] == [False] * (len(history) - 1) + [True]
    assert all(a["valid_to"] == b["valid_from"] for a, b in pairwise(history))

    prices = sorted(_rows(spark, "sku_prices"), key=lambda row: row["valid_from"])
    assert [str(row["price"]) for row in prices] == ["10.00", "15.00", "9.99"]
    assert prices[-1]["valid_to"] is None and prices[0]["valid_to"] == prices[1]["valid_from"]


def test_running_the_same_batch_twice_changes_nothing(lakehouse, spark):
    store = sources.shop(products=2)
    sources.order(sources.shopper(), store, review=5)
    sources.reprice(store.sku_ids[1], "30.00")
    sources.events([{"event_type": "view", "session_id": "s", "product_id": store.product_ids[0]}])
    _build(spark)
    before = {table: _rows(spark, table) for _layer, table, _uri in tables.all_tables() if _layer == "silver"}

    shutil.rmtree(lakehouse / "system" / "checkpoints")  # forget how far silver got: replay every batch
    silver.build_silver(spark)

    after = {table: _rows(spark, table) for table in before}
    assert after == before
    assert {"products", "skus", "product_history", "sku_prices", "orders", "events"} <= set(before)


def test_a_late_older_change_never_overwrites_a_newer_version(lakehouse, spark):
    store = sources.shop(products=1)
    product = str(store.product_ids[0])
    sources.retitle(store.product_ids[0], "Current title")
    _build(spark)
    stale = {"id": product, "tenant_id": str(store.tenant_id), "title": "Stale title", "status": "active",
             "version": 1}
    with owner_engine().begin() as connection:
        connection.execute(text(
            "INSERT INTO outbox (event_type, schema_version, tenant_id, aggregate_type, aggregate_id, payload,"
            " occurred_at) VALUES ('product.updated', 1, :tenant, 'product', :id, CAST(:payload AS jsonb), :at)"
        ), {"tenant": str(store.tenant_id), "id": product, "payload": json.dumps(stale),
            "at": datetime.now(UTC) - timedelta(days=1)})
    _build(spark)

    [current] = [row for row in _rows(spark, "products") if row["product_id"] == product]
    assert current["title"] == "Current title"
    history = sorted(_rows(spark, "product_history"), key=lambda row: row["valid_from"])
    assert history[0]["title"] == "Stale title" and history[-1]["title"] == "Current title"


def test_clean_events_drop_bots_and_duplicates(lakehouse, spark):
    store = sources.shop(products=1)
    product = store.product_ids[0]
    at = datetime.now(UTC) - timedelta(minutes=5)
    sources.events([
        {"event_type": "view", "session_id": "person", "product_id": product, "occurred_at": at},
        {"event_type": "view", "session_id": "person", "product_id": product, "occurred_at": at},  # client retry
        {"event_type": "view", "session_id": "crawler", "product_id": product,
         "context": {"user_agent": "Googlebot/2.1"}},
        *[{"event_type": "view", "session_id": "burst", "product_id": product,
           "occurred_at": at + timedelta(milliseconds=i)} for i in range(silver.MAX_EVENTS_PER_SESSION_MINUTE + 1)],
    ])
    _build(spark)
    events = _rows(spark, "events")
    assert [row["session_id"] for row in events] == ["person"]


def test_impressions_of_long_lists_do_not_make_a_session_a_bot(lakehouse, spark):
    product = sources.shop(products=1).product_ids[0]
    at = datetime.now(UTC) - timedelta(minutes=5)
    shown = silver.MAX_EVENTS_PER_SESSION_MINUTE + 10
    sources.events([
        *[{"event_type": "impression", "session_id": "scrolling", "product_id": product, "position": i,
           "occurred_at": at + timedelta(milliseconds=i)} for i in range(shown)],
        {"event_type": "click", "session_id": "scrolling", "product_id": product, "position": 3, "occurred_at": at},
    ])
    _build(spark)
    assert len([row for row in _rows(spark, "events") if row["session_id"] == "scrolling"]) == shown + 1
