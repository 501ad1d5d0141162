"""Data quality gates with Great Expectations: a suite per silver and gold table.

Each suite checks keys (not null, unique), value ranges and sets, referential integrity against
the silver tables it points into, freshness, and the row-count delta against the last validated
count. Gold tables are published only when their own suite and the suites of every silver table
they read pass; a failure names the table and expectation. Every result is appended to the
lakehouse table `quality.results`, so the history of the gates is itself queryable.

Suites run on GE's pandas engine over an Arrow export of the table: it behaves the same whichever
Spark engine built the frame (GE's Spark engine expects a classic, JVM session).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import great_expectations as gx
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from pipelines import tables

RESULTS = ("quality", "results")
EVENT_TYPES = ["impression", "view", "search", "click", "add_to_cart", "remove_from_cart", "purchase"]


class QualitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_QUALITY_", extra="ignore")

    max_staleness_hours: float = Field(24 * 7, description="newest change older than this fails freshness")
    max_shrink: float = Field(0.5, description="a table may lose at most this share of its rows between runs")


@dataclass(frozen=True)
class Suite:
    table: str  # layer.name
    keys: tuple[str, ...]
    not_null: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    value_sets: dict[str, tuple] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # column -> silver.table.column
    fresh: str | None = None  # timestamp column whose newest value must be recent


_MONEY = (0, None)
SUITES = {suite.table: suite for suite in (
    Suite("silver.tenants", ("tenant_id",), ("slug", "status"), {"commission_rate": (0, 1), "tax_rate": (0, 1)}),
    Suite("silver.users", ("user_id",), ("role",), value_sets={
        "role": ("buyer", "seller_admin", "seller_staff", "platform_admin")}),
    Suite("silver.categories", ("category_id",), ("slug",)),
    Suite("silver.products", ("tenant_id", "product_id"), ("title", "status"), {"rating_avg": (0, 5)},
          references={"tenant_id": "silver.tenants.tenant_id"}),
    Suite("silver.skus", ("tenant_id", "sku_id"), ("sku_code", "price"),
          {"price": _MONEY, "low_stock_threshold": (0, None)},
          references={"product_id": "silver.products.product_id"}),
    Suite("silver.warehouses", ("tenant_id", "warehouse_id"), ("code",)),
    Suite("silver.inventory", ("tenant_id", "inventory_id"), ("sku_id",), {"available": (0, None), "reserved": (0, None)},
          references={"sku_id": "silver.skus.sku_id"}),
    Suite("silver.orders", ("order_id",), ("buyer_id", "status"), {"grand_total": _MONEY}, fresh="_changed_at"),
    Suite("silver.sub_orders", ("tenant_id", "sub_order_id"), ("order_id",), {"items_total": _MONEY},
          references={"order_id": "silver.orders.order_id"}),
    Suite("silver.order_items", ("tenant_id", "order_item_id"), ("order_id", "product_id"),
          {"quantity": (1, None), "unit_price": _MONEY},
          references={"order_id": "silver.orders.order_id", "product_id": "silver.products.product_id"}),
    Suite("silver.payments", ("payment_id",), ("order_id", "status"), {"amount": _MONEY, "refunded_amount": _MONEY},
          references={"order_id": "silver.orders.order_id"}),
    Suite("silver.refunds", ("tenant_id", "refund_id"), ("payment_id",), {"amount": _MONEY}),
    Suite("silver.reviews", ("tenant_id", "review_id"), ("product_id", "buyer_id"), {"rating": (1, 5)},
          references={"product_id": "silver.products.product_id"}),
    Suite("silver.product_history", ("tenant_id", "product_id", "_txid", "_seq"), ("valid_from",)),
    Suite("silver.sku_prices", ("tenant_id", "sku_id", "_txid", "_seq"), ("valid_from", "price"), {"price": _MONEY}),
    Suite("silver.events", ("event_id",), ("session_id", "event_type", "occurred_at"),
          {"position": (0, None), "quantity": (1, None)}, {"event_type": tuple(EVENT_TYPES)}, fresh="received_at"),
    Suite("gold.interactions", ("user_key", "product_id"), ("weight", "last_interaction_at"),
          {"interactions": (1, None)}, references={"product_id": "silver.products.product_id"}),
    Suite("gold.sessions", ("session_id",), ("started_at",), {"events": (1, None), "item_count": (0, None)}),
    Suite("gold.item_popularity", ("window_days", "product_id"), ("score", "tenant_id"),
          {"rank_in_category": (1, None), "rank_in_tenant": (1, None)}, {"window_days": (1, 7, 30)},
          references={"product_id": "silver.products.product_id"}),
    Suite("gold.seller_daily", ("tenant_id", "date"), (), {"orders": (0, None), "units": (0, None),
                                                           "gross_revenue": _MONEY, "avg_rating": (1, 5)},
          references={"tenant_id": "silver.tenants.tenant_id"}),
    Suite("gold.search_queries", ("search_event_id",), ("session_id", "query", "searched_at"),
          {"clicks": (0, None), "result_count": (0, None)},
          {"outcome": ("abandoned", "clicked", "purchased")}),
    Suite("gold.user_features", ("user_key", "feature_date"), ("feature_timestamp", "spend_total"),
          {"days_since_last_event": (0, None), "days_since_last_order": (0, None), "events_30d": (0, None),
           "orders_total": (0, None), "spend_total": _MONEY}),
    Suite("gold.item_features", ("product_id", "feature_date"), ("feature_timestamp", "tenant_id", "in_stock"),
          {"conversion_rate_30d": (0, 1), "rating_avg": (1, 5), "price": _MONEY, "stock_available": (0, None),
           "unique_users_30d": (0, None)}, references={"product_id": "silver.products.product_id"}),
    Suite("gold.seller_features", ("tenant_id", "feature_date"), ("feature_timestamp",),
          {"seller_rating_avg": (1, 5), "fulfilment_hours_avg": (0, None), "seller_orders_30d": (0, None)},
          references={"tenant_id": "silver.tenants.tenant_id"}),
)}


@dataclass
class SuiteResult:
    table: str
    success: bool
    row_count: int
    failures: list[str]
    expectations: list[dict]

    def summary(self) -> dict:
        return {"table": self.table, "success": self.success, "rows": self.row_count, "failures": self.failures}


def _with_reference_checks(spark: SparkSession, frame: DataFrame, suite: Suite) -> DataFrame:
    """One boolean column per reference: the value is null or exists in the referenced table."""
    for column, target in suite.references.items():
        layer, name, key = target.split(".")
        uri = tables.table_uri(layer, name)
        known = (tables.read(spark, uri).select(F.col(key).alias("_ref")).distinct() if tables.exists(uri)
                 else spark.createDataFrame([], "_ref STRING"))
        frame = (frame.join(known, frame[column] == known["_ref"], "left")
                 .withColumn(f"_references_{column}", F.col(column).isNull() | F.col("_ref").isNotNull())
                 .drop("_ref"))
    return frame


def _as_pandas(frame: DataFrame, suite: Suite):
    wanted = {*suite.keys, *suite.not_null, *suite.ranges, *suite.value_sets, *(suite.fresh and [suite.fresh] or []),
              *(f"_references_{column}" for column in suite.references)}
    columns = [F.col(c).cast("double").alias(c) if isinstance(frame.schema[c].dataType, DecimalType) else F.col(c)
               for c in frame.columns if c in wanted]
    return frame.select(*columns).toArrow().to_pandas()


def _expectations(suite: Suite, previous_rows: int | None, has_rows: bool, settings: QualitySettings) -> list:
    expect = gx.expectations
    checks: list = []
    for column in (*suite.keys, *suite.not_null):
        checks.append(expect.ExpectColumnValuesToNotBeNull(column=column))
    if len(suite.keys) == 1:
        checks.append(expect.ExpectColumnValuesToBeUnique(column=suite.keys[0]))
    else:
        checks.append(expect.ExpectCompoundColumnsToBeUnique(column_list=list(suite.keys)))
    for column, (low, high) in suite.ranges.items():
        checks.append(expect.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    for column, allowed in suite.value_sets.items():
        checks.append(expect.ExpectColumnValuesToBeInSet(column=column, value_set=list(allowed)))
    for column in suite.references:
        checks.append(expect.ExpectColumnValuesToBeInSet(column=f"_references_{column}", value_set=[True]))
    if suite.fresh and has_rows:
        oldest_allowed = datetime.now(UTC) - timedelta(hours=settings.max_staleness_hours)
        checks.append(expect.ExpectColumnMaxToBeBetween(column=suite.fresh, min_value=oldest_allowed))
    if previous_rows:
        checks.append(expect.ExpectTableRowCountToBeBetween(
            min_value=math.floor(previous_rows * (1 - settings.max_shrink)), max_value=None))
    return checks


def _describe(result) -> str:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k in ("column", "column_list", "min_value", "max_value")}
    observed = result.result.get("unexpected_count", result.result.get("observed_value"))
    return f"{config.type}({json.dumps(kwargs, default=str)}): observed {observed}"


def _previous_row_count(spark: SparkSession, table: str) -> int | None:
    uri = tables.table_uri(*RESULTS)
    if not tables.exists(uri):
        return None
    row = (tables.read(spark, uri).where((F.col("table_name") == table) & F.col("suite_success"))
           .orderBy(F.desc("checked_at")).select("row_count").first())
    return row["row_count"] if row else None


def validate(spark: SparkSession, table: str, frame: DataFrame) -> SuiteResult:
    """Run `table`'s suite on `frame` (the published table or a candidate for publication)."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    suite = SUITES[table]
    settings = QualitySettings()
    data = _as_pandas(_with_reference_checks(spark, frame, suite), suite)
    # No per-suite progress bars: a gold build validates a dozen tables and would bury its own output.
    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        progress_bars=ProgressBarsConfig(globally=False), store_backend_defaults=InMemoryStoreBackendDefaults()))
    batch = (context.data_sources.add_pandas("lakehouse").add_dataframe_asset(table)
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": data}))
    expectations = gx.ExpectationSuite(
        name=table, expectations=_expectations(suite, _previous_row_count(spark, table), len(data) > 0, settings))
    outcome = batch.validate(expectations, result_format="SUMMARY")
    results = [
        {"expectation": r.expectation_config.type, "kwargs": json.dumps(r.expectation_config.kwargs, default=str),
         "success": bool(r.success), "observed": json.dumps(r.result, default=str)[:2000]}
        for r in outcome.results
    ]
    failures = [_describe(r) for r in outcome.results if not r.success]
    return SuiteResult(table, bool(outcome.success), len(data), failures, results)


def record(spark: SparkSession, results: list[SuiteResult]) -> str:
    """Append the results of one gate run to quality.results; returns the run id."""
    run_id = uuid.uuid4().hex
    rows = [(run_id, r.table, r.success, r.row_count, e["expectation"], e["kwargs"], e["success"], e["observed"])
            for r in results for e in r.expectations]
    if rows:
        frame = spark.createDataFrame(rows, "run_id STRING, table_name STRING, suite_success BOOLEAN, "
                                            "row_count BIGINT, expectation STRING, kwargs STRING, "
                                            "success BOOLEAN, observed STRING")
        tables.append(frame.withColumn("checked_at", F.current_timestamp()), tables.table_uri(*RESULTS))
    return run_id
