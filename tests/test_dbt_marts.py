"""dbt over the warehouse: a tiny generated marketplace goes through the lakehouse, the warehouse
load and `dbt build` (models, data tests, unit tests); the seller marts stay isolated per tenant
and the platform marts stay with the platform."""

from __future__ import annotations

import uuid
from datetime import date

import polars as pl
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from tests.factories_analytics import build_marts, point_lakehouse_at, run_lakehouse, tiny_marketplace
from transactional.db import PLATFORM, AccessContext, owner_engine, session_scope

pytestmark = pytest.mark.slow

SELLER_MARTS = ("seller_daily_sales", "seller_product_performance", "seller_inventory_health",
                "seller_customer_retention", "seller_reviews_summary", "seller_settlements")
PLATFORM_MARTS = ("platform_daily_traffic", "platform_conversion_funnel", "platform_search_performance",
                  "platform_inventory_health", "platform_tenant_activity", "platform_marketplace_growth")


@pytest.fixture(scope="module")
def marketplace(migrated_database, tmp_path_factory):
    import os

    previous = os.environ.get("MARKETLAKE_LAKEHOUSE_URI")
    market = tiny_marketplace(tmp_path_factory.mktemp("lakehouse"))
    run_lakehouse()
    build_marts()
    yield market
    if previous is None:
        os.environ.pop("MARKETLAKE_LAKEHOUSE_URI", None)
    else:
        point_lakehouse_at(previous)


def _tenant_ids() -> list[uuid.UUID]:
    with session_scope(PLATFORM) as session:
        return list(session.scalars(text("SELECT id FROM tenants ORDER BY slug")))


def _rows(access: AccessContext, relation: str, columns: str = "count(*)", tail: str = ""):
    with session_scope(access) as session:
        return session.execute(text(f"SELECT {columns} FROM {relation} {tail}")).all()


def test_every_seller_mart_has_rows_for_every_seller(marketplace):
    tenants = set(_tenant_ids())
    assert len(tenants) == marketplace.data.tenants.height
    for mart in ("seller_daily_sales", "seller_product_performance", "seller_inventory_health",
                 "seller_customer_retention", "seller_settlements"):
        seen = {row[0] for row in _rows(PLATFORM, f"seller_analytics.{mart}", "DISTINCT tenant_id")}
        assert seen == tenants, mart
    for mart in PLATFORM_MARTS:
        assert _rows(PLATFORM, f"platform_analytics.{mart}")[0][0] > 0, mart


def test_a_sellers_session_sees_only_its_own_rows_of_every_seller_mart(marketplace):
    first, second, *_ = _tenant_ids()
    for mart in SELLER_MARTS:
        relation = f"seller_analytics.{mart}"
        per_tenant = dict(_rows(PLATFORM, relation, "tenant_id, count(*)", "GROUP BY tenant_id"))
        for tenant in (first, second):
            seen = _rows(AccessContext("tenant", tenant_id=tenant), relation, "tenant_id, count(*)", "GROUP BY tenant_id")
            assert seen == ([(tenant, per_tenant[tenant])] if tenant in per_tenant else []), mart
        # a filter naming another tenant still returns nothing
        with session_scope(AccessContext("tenant", tenant_id=first)) as session:
            assert session.scalar(text(f"SELECT count(*) FROM {relation} WHERE tenant_id = :t"), {"t": second}) == 0
        assert _rows(AccessContext("shopper", user_id=uuid.uuid4()), relation) == [(0,)], mart


def test_platform_marts_and_loaded_tables_are_closed_to_sellers(marketplace):
    seller = AccessContext("tenant", tenant_id=_tenant_ids()[0])
    for mart in PLATFORM_MARTS:
        assert _rows(seller, f"platform_analytics.{mart}") == [(0,)], mart
    # the loaded lakehouse tables span every tenant: the application role may not read them at all
    with pytest.raises(ProgrammingError, match="permission denied"):
        _rows(PLATFORM, "analytics.sub_orders")


def test_marts_agree_with_the_generated_orders(marketplace):
    """GMV of the sales mart equals the items total of every paid, non-cancelled sub-order."""
    data = marketplace.data
    statuses = data.orders.with_row_index("order_idx").select(pl.col("order_idx").cast(pl.Int32), "status")
    sales = data.sub_orders.join(statuses, on="order_idx").filter(
        ~pl.col("status").is_in(["PAYMENT_PENDING", "PAYMENT_FAILED", "CANCELLED"]))
    (orders, gmv), = _rows(PLATFORM, "seller_analytics.seller_daily_sales", "sum(orders), sum(gmv)")
    assert orders == sales.height
    assert gmv * 100 == sales["items_total_cents"].sum()


def test_reloading_a_partition_or_a_whole_table_gives_the_same_rows(marketplace):
    from orchestration.warehouse_load import LOADED, load

    events = LOADED["events"]
    with owner_engine().connect() as connection:
        before = connection.execute(text("SELECT event_date, count(*) FROM analytics.events GROUP BY 1")).all()
    first_day = min(day for day, _ in before)
    days = (first_day, date.fromordinal(first_day.toordinal() + 2))
    reports = [load(events, days), load(events, days), load(LOADED["sub_orders"])]
    assert reports[0].rows == reports[1].rows == sum(n for day, n in before if days[0] <= day <= days[1])
    assert reports[2].rows == marketplace.data.sub_orders.height
    with owner_engine().connect() as connection:
        after = connection.execute(text("SELECT event_date, count(*) FROM analytics.events GROUP BY 1")).all()
    assert sorted(after) == sorted(before)


def test_a_lakehouse_table_missing_a_contract_column_fails_the_load(marketplace):
    from orchestration.warehouse_load import LoadedTable, extract

    broken = LoadedTable("silver", "tenants", "tenant_id uuid, vat_number text")
    with pytest.raises(ValueError, match="vat_number"):
        extract(broken)


def test_docs_generate_and_source_freshness(marketplace):
    from orchestration.resources import dbt_cli

    docs = dbt_cli().cli(["docs", "generate"], raise_on_error=True)
    docs.wait()
    catalog = docs.target_path / "catalog.json"
    assert catalog.exists() and "seller_settlements" in catalog.read_text()
    dbt_cli().cli(["source", "freshness"], raise_on_error=True).wait()
