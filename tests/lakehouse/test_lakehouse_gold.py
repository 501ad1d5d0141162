"""Gold tables from realistic shopper journeys, and the quality gates in front of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from deltalake import DeltaTable
from sqlalchemy import text

from pipelines import bronze, gold, silver, tables
from tests.lakehouse import sources
from transactional.db import owner_engine


def _run(spark):
    bronze.ingest(spark)
    silver.build_silver(spark)
    return gold.build_gold(spark)


def _gold(lakehouse, name: str) -> list[dict]:
    return DeltaTable(str(lakehouse / "gold" / name)).to_pyarrow_table().to_pylist()


def _journeys(store, buyer):
    mug, lamp, _ = (str(p) for p in store.product_ids)
    start = datetime.now(UTC) - timedelta(hours=2)
    step = iter(range(1000))

    def at():
        return start + timedelta(seconds=10 * next(step))

    tenant = store.tenant_id
    sources.events([
        {"event_type": "search", "session_id": "a", "user_id": buyer, "query": "Mug ", "occurred_at": at(),
         "context": {"result_count": 7, "results_shown": [mug, lamp]}},
        {"event_type": "click", "session_id": "a", "user_id": buyer, "query": "mug", "position": 0,
         "product_id": mug, "tenant_id": tenant, "occurred_at": at()},
        {"event_type": "view", "session_id": "a", "user_id": buyer, "product_id": mug, "tenant_id": tenant,
         "occurred_at": at()},
        {"event_type": "add_to_cart", "session_id": "a", "user_id": buyer, "product_id": mug, "tenant_id": tenant,
         "quantity": 1, "occurred_at": at()},
        {"event_type": "purchase", "session_id": "a", "user_id": buyer, "product_id": mug, "tenant_id": tenant,
         "quantity": 1, "occurred_at": at()},
        {"event_type": "search", "session_id": "a", "user_id": buyer, "query": "lamp", "occurred_at": at()},
        {"event_type": "click", "session_id": "a", "user_id": buyer, "query": "lamp", "position": 3,
         "product_id": lamp, "tenant_id": tenant, "occurred_at": at()},
        {"event_type": "search", "session_id": "b", "anonymous_id": "device-9", "query": "chair", "occurred_at": at(),
         "context": {"result_count": 0, "results_shown": []}},
        {"event_type": "view", "session_id": "b", "anonymous_id": "device-9", "product_id": lamp,
         "tenant_id": tenant, "occurred_at": at()},
        {"event_type": "view", "session_id": "b", "anonymous_id": "device-9", "product_id": lamp,
         "tenant_id": tenant, "occurred_at": at()},
        {"event_type": "view", "session_id": "b", "anonymous_id": "device-9", "product_id": mug,
         "tenant_id": tenant, "occurred_at": at()},
    ])
    return mug, lamp


@pytest.mark.slow
def test_gold_tables_describe_what_shoppers_did(lakehouse, spark):
    store = sources.shop(products=3)
    buyer = sources.shopper()
    mug, lamp = _journeys(store, buyer)
    sources.order(buyer, store, item=0, quantity=2, review=5)

    report = _run(spark)
    assert report.blocked == {} and set(report.published) == {t.name for t in gold.GOLD_TABLES}

    interactions = {(row["user_key"], row["product_id"]): row for row in _gold(lakehouse, "interactions")}
    bought = interactions[(str(buyer), mug)]
    # click 2 + view 1 + add_to_cart 4 + purchase 8 + order line 2 x 8 + review (5 - 3)
    assert bought["weight"] == 2 + 1 + 4 + 8 + 16 + 2
    assert (bought["views"], bought["clicks"], bought["purchases"], bought["order_lines"]) == (1, 1, 1, 1)
    anonymous = interactions[("anon:device-9", lamp)]
    assert anonymous["is_anonymous"] and anonymous["views"] == 2

    sessions = {row["session_id"]: row for row in _gold(lakehouse, "sessions")}
    assert list(sessions["a"]["items"]) == [mug, lamp]
    assert list(sessions["b"]["items"]) == [lamp, mug]  # the repeated lamp view is one step
    assert sessions["a"]["purchases"] == 1 and sessions["b"]["user_key"] == "anon:device-9"

    searches = {row["query"]: row for row in _gold(lakehouse, "search_queries")}
    assert searches["mug"]["outcome"] == "purchased" and list(searches["mug"]["purchased_products"]) == [mug]
    assert searches["lamp"]["outcome"] == "clicked" and searches["lamp"]["first_click_position"] == 3
    assert searches["chair"]["outcome"] == "abandoned"
    assert (searches["mug"]["result_count"], list(searches["mug"]["shown_products"])) == (7, [mug, lamp])
    assert searches["chair"]["result_count"] == 0 and searches["lamp"]["result_count"] is None  # not reported

    popularity = {(row["window_days"], row["product_id"]): row for row in _gold(lakehouse, "item_popularity")}
    assert popularity[(1, mug)]["rank_in_category"] == 1 and popularity[(1, mug)]["tenant_id"] == str(store.tenant_id)
    assert popularity[(30, lamp)]["views"] == 2

    [day] = _gold(lakehouse, "seller_daily")
    assert day["tenant_id"] == str(store.tenant_id) and day["orders"] == 1 and day["units"] == 2
    assert str(day["gross_revenue"]) == "20.00" and day["reviews"] == 1


def _bad_order_line(store, buyer):
    """An order line with quantity 0, as a broken upstream writer could emit (the database's own
    constraints are bypassed: the row enters through the outbox)."""
    order_id = sources.order(buyer, store)
    with owner_engine().begin() as connection:
        line = connection.execute(text("SELECT to_jsonb(i) FROM order_items i WHERE order_id = :o"),
                                  {"o": order_id}).scalar()
        line.update({"id": "00000000-0000-0000-0000-00000000bad0", "quantity": 0})
        connection.execute(text(
            "INSERT INTO outbox (event_type, schema_version, tenant_id, aggregate_type, aggregate_id, payload)"
            " VALUES ('order_item.created', 1, :tenant, 'order_item', :id, CAST(:payload AS jsonb))"
        ), {"tenant": str(store.tenant_id), "id": line["id"], "payload": json.dumps(line)})


@pytest.mark.slow
def test_a_failing_suite_stops_publication_and_says_which_expectation_failed(lakehouse, spark):
    store = sources.shop(products=3)
    buyer = sources.shopper()
    _journeys(store, buyer)
    _bad_order_line(store, buyer)

    report = _run(spark)

    depends_on_order_items = {table.name for table in gold.GOLD_TABLES if "order_items" in table.reads}
    assert set(report.blocked) == depends_on_order_items
    assert not any((lakehouse / "gold" / name).exists() for name in depends_on_order_items)
    reasons = report.blocked["interactions"]
    assert any("silver.order_items" in r and "expect_column_values_to_be_between" in r and "quantity" in r
               for r in reasons)
    results = tables.read(spark, tables.table_uri("quality", "results")).where(f"run_id = '{report.run_id}'")
    failed = {(row["table_name"], row["expectation"]) for row in results.where("NOT success").collect()}
    assert ("silver.order_items", "expect_column_values_to_be_between") in failed


@pytest.mark.slow
def test_a_dangling_reference_is_stopped(lakehouse, spark):
    store = sources.shop(products=1)
    unknown_product = "00000000-0000-0000-0000-0000000000aa"
    sources.events([{"event_type": "view", "session_id": "s", "product_id": unknown_product,
                     "tenant_id": store.tenant_id}])
    report = _run(spark)
    assert "interactions" in report.blocked
    assert any("_references_product_id" in reason for reason in report.blocked["interactions"])
    assert "sessions" in report.published  # tables without the failing expectation still publish
