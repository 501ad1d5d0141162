"""A generated (tiny) marketplace taken through the lakehouse into the warehouse and the dbt marts,
for the analytics, orchestration and dashboard tests (each module builds it once)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from transactional.datagen.data import MarketplaceData
from transactional.datagen.generator import generate_marketplace
from transactional.datagen.loader import DEMO_PASSWORD, load_marketplace
from transactional.db import owner_engine
from transactional.models import Base

SEED = 5


@dataclass
class TinyMarketplace:
    data: MarketplaceData
    lakehouse: Path
    password: str = DEMO_PASSWORD  # of every generated account


def empty_database() -> None:
    """No transactional rows, no generated dashboards (marts and loaded tables are replaced by the
    pipeline itself)."""
    from transactional.ratelimit import tenant_buckets

    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with owner_engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text("TRUNCATE analytics.seller_dashboards"))
    tenant_buckets.reset()


def point_lakehouse_at(root: Path) -> None:
    from pipelines.settings import lakehouse_settings

    os.environ["MARKETLAKE_LAKEHOUSE_URI"] = str(root)
    lakehouse_settings.cache_clear()


def tiny_marketplace(root: Path) -> TinyMarketplace:
    """An empty database and lakehouse, then a tiny generated marketplace written through the services."""
    empty_database()
    point_lakehouse_at(root)
    data = generate_marketplace("tiny", seed=SEED)
    load_marketplace(data)
    return TinyMarketplace(data, root)


def run_lakehouse() -> None:
    from pipelines import bronze, gold, silver
    from pipelines.engine import get_spark

    spark = get_spark()
    bronze.ingest(spark)
    silver.build_silver(spark)
    report = gold.build_gold(spark)
    assert not report.blocked, report.blocked


def build_marts() -> None:
    """Warehouse load, then `dbt build` (models, data tests and unit tests)."""
    from orchestration.resources import dbt_cli
    from orchestration.warehouse_load import load_all

    load_all()
    dbt_cli().cli(["build"], raise_on_error=True).wait()
