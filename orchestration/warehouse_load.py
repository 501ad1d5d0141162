"""Warehouse load: lakehouse Delta tables into the PostgreSQL `analytics` schema, where dbt reads them.

Each loaded table has a declared column contract (the columns dbt relies on, with PostgreSQL
types), so a new lakehouse column never changes the warehouse by surprise and a missing one fails
loudly. Delta is read with polars (the `deltalake` reader, no Spark), rows go in with COPY.

Idempotent per partition: a dated table is loaded one day range at a time (delete the range, copy
it again) and any other table whole (truncate, copy), each in one transaction, so rerunning a load
or a backfill gives the same rows and readers never see half a load.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl
from sqlalchemy import Connection, Engine, text

from pipelines import tables
from pipelines.settings import lakehouse_settings
from transactional.db import owner_engine

SCHEMA = "analytics"
COPY_BATCH_ROWS = 50_000
NULL = r"\N"


@dataclass(frozen=True)
class LoadedTable:
    """A lakehouse table kept in `analytics.<name>`; `dated_by` (a date or UTC timestamp column)
    makes its loads daily partitions."""

    layer: str
    name: str
    columns: str  # "name type, ..." in PostgreSQL DDL
    dated_by: str | None = None

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_types(self) -> dict[str, str]:
        # commas inside parentheses belong to a type: numeric(14,2)
        pairs = (column.strip().split(" ", 1) for column in re.split(r",(?![^()]*\))", self.columns))
        return {name: kind.strip() for name, kind in pairs}

    @property
    def uri(self) -> str:
        return tables.table_uri(self.layer, self.name)

    def partition_sql(self) -> str:
        """The row's day in SQL (UTC)."""
        if self.column_types[self.dated_by] == "date":
            return self.dated_by
        return f"({self.dated_by} AT TIME ZONE 'UTC')::date"


# When the lakehouse saw the row change (freshness) and whether it was deleted in PostgreSQL.
_ENTITY = "_changed_at timestamptz, _deleted boolean"
LOADED_TABLES = (
    LoadedTable("silver", "tenants", "tenant_id uuid, slug text, store_name text, status text, kyc_status text, "
                "plan text, commission_rate numeric(5,4), created_at timestamptz, updated_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "users", "user_id uuid, role text, tenant_id uuid, is_active boolean, "
                "created_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "categories", "category_id uuid, parent_id uuid, slug text, name text, " + _ENTITY),
    LoadedTable("silver", "products", "product_id uuid, tenant_id uuid, title text, brand text, category_id uuid, "
                "status text, min_price numeric(14,2), rating_avg numeric(3,2), rating_count integer, "
                "deleted_at timestamptz, created_at timestamptz, updated_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "skus", "sku_id uuid, tenant_id uuid, product_id uuid, sku_code text, price numeric(14,2), "
                "currency text, low_stock_threshold integer, is_active boolean, created_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "warehouses", "warehouse_id uuid, tenant_id uuid, code text, name text, " + _ENTITY),
    LoadedTable("silver", "inventory", "inventory_id uuid, tenant_id uuid, sku_id uuid, warehouse_id uuid, "
                "available integer, reserved integer, updated_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "orders", "order_id uuid, buyer_id uuid, status text, currency text, "
                "items_total numeric(14,2), tax_total numeric(14,2), shipping_total numeric(14,2), "
                "grand_total numeric(14,2), shipping_method text, payment_method text, shipping_country text, "
                "placed_at timestamptz, updated_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "sub_orders", "sub_order_id uuid, order_id uuid, tenant_id uuid, buyer_id uuid, "
                "status text, items_total numeric(14,2), tax_total numeric(14,2), shipping_total numeric(14,2), "
                "commission numeric(14,2), created_at timestamptz, updated_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "order_items", "order_item_id uuid, order_id uuid, sub_order_id uuid, tenant_id uuid, "
                "buyer_id uuid, product_id uuid, sku_id uuid, quantity integer, unit_price numeric(14,2), "
                "created_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "refunds", "refund_id uuid, payment_id uuid, sub_order_id uuid, tenant_id uuid, "
                "buyer_id uuid, amount numeric(14,2), status text, created_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "reviews", "review_id uuid, tenant_id uuid, product_id uuid, order_item_id uuid, "
                "buyer_id uuid, rating integer, moderation_status text, created_at timestamptz, "
                "updated_at timestamptz, " + _ENTITY),
    LoadedTable("silver", "events", "event_id uuid, event_type text, user_id uuid, anonymous_id text, "
                "session_id text, occurred_at timestamptz, received_at timestamptz, tenant_id uuid, product_id uuid, query text, "
                "position integer, quantity integer, context jsonb, event_date date", dated_by="event_date"),
    LoadedTable("gold", "seller_daily", "tenant_id uuid, date date, orders bigint, units bigint, "
                "gross_revenue numeric(18,2), commission numeric(18,2), refunds numeric(18,2), "
                "product_views bigint, sessions bigint, reviews bigint, avg_rating double precision, "
                "conversion_rate double precision"),
    LoadedTable("gold", "search_queries", "search_event_id uuid, session_id text, user_key text, tenant_id uuid, "
                "query text, searched_at timestamptz, clicked_products text[], first_click_position integer, "
                "purchased_products text[], clicks integer, outcome text, result_count integer, shown_products text[]",
                dated_by="searched_at"),
)
LOADED = {table.name: table for table in LOADED_TABLES}


@dataclass
class LoadReport:
    table: str
    rows: int
    seconds: float
    days: tuple[date, date] | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# --- extract -----------------------------------------------------------------------------------

def _storage() -> dict[str, str] | None:
    return lakehouse_settings().lakehouse_storage_options or None


def extract(table: LoadedTable, days: tuple[date, date] | None = None) -> pl.DataFrame | None:
    """The contract's columns of the Delta table (only the given days for a dated table);
    None when the lakehouse has not written the table yet."""
    if not tables.exists(table.uri):
        return None
    frame = pl.scan_delta(table.uri, storage_options=_storage())
    missing = [column for column in table.column_types if column not in frame.collect_schema()]
    if missing:
        raise ValueError(f"{table.layer}.{table.name} lacks the warehouse contract's columns {missing}")
    if days is not None:
        frame = frame.filter(pl.col(table.dated_by).dt.date().is_between(*days))
    return frame.select(list(table.column_types)).collect()


# --- transform ---------------------------------------------------------------------------------

def _array_literal(column: str) -> pl.Expr:
    escaped = pl.element().str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
    quoted = pl.col(column).list.eval(pl.lit('"') + escaped + pl.lit('"')).list.join(",")
    return (pl.lit("{") + quoted + pl.lit("}")).alias(column)


def to_copy_frame(table: LoadedTable, frame: pl.DataFrame) -> pl.DataFrame:
    """Values as COPY's CSV reads them: arrays as PostgreSQL array literals."""
    arrays = [name for name, kind in table.column_types.items() if kind.endswith("[]")]
    return frame.with_columns(_array_literal(name) for name in arrays) if arrays else frame


# --- load --------------------------------------------------------------------------------------

def ensure_table(connection: Connection, table: LoadedTable) -> None:
    """Create the table, or add the contract's columns it lacks (contracts only grow)."""
    connection.execute(text(f"CREATE TABLE IF NOT EXISTS {table.qualified} ({table.columns})"))
    for name, kind in table.column_types.items():
        connection.execute(text(f"ALTER TABLE {table.qualified} ADD COLUMN IF NOT EXISTS {name} {kind}"))
    if table.dated_by:
        connection.execute(text(
            f"CREATE INDEX IF NOT EXISTS {table.name}_partition ON {table.qualified} (({table.partition_sql()}))"))


def _copy(connection: Connection, table: LoadedTable, frame: pl.DataFrame) -> None:
    columns = ", ".join(frame.columns)
    statement = f"COPY {table.qualified} ({columns}) FROM STDIN (FORMAT csv, NULL '{NULL}')"
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in to_copy_frame(table, frame).iter_slices(COPY_BATCH_ROWS):
            copy.write(batch.write_csv(include_header=False, null_value=NULL, quote_style="non_numeric"))


def load(table: LoadedTable, days: tuple[date, date] | None = None, *, engine: Engine | None = None) -> LoadReport:
    """Replace the table (or, for a dated table given `days`, those days) with the lakehouse's rows."""
    if days is not None and table.dated_by is None:
        raise ValueError(f"{table.name} is not dated: it loads whole")
    started = time.perf_counter()
    frame = extract(table, days)
    with (engine or owner_engine()).begin() as connection:
        ensure_table(connection, table)
        if days is None:
            connection.execute(text(f"TRUNCATE {table.qualified}"))
        else:
            connection.execute(text(f"DELETE FROM {table.qualified} WHERE {table.partition_sql()} BETWEEN :a AND :b"),
                               {"a": days[0], "b": days[1]})
        if frame is not None and frame.height:
            _copy(connection, table, frame)
    return LoadReport(table.name, frame.height if frame is not None else 0, time.perf_counter() - started, days)


def load_all(names: Iterable[str] | None = None, *, engine: Engine | None = None) -> list[LoadReport]:
    """Load the named tables (default: every one) whole."""
    return [load(LOADED[name], engine=engine) for name in (names or LOADED)]
