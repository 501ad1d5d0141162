"""The pure transforms on fixed inputs, and a Delta MERGE round trip, runnable on any SparkSession.
`python -m tests.lakehouse.portable_transforms [--delta ROOT]` runs the transforms on JVM Spark in
local mode (plain DataFrames), or the round trip under ROOT on the configured engine (classic Spark
with Delta's jars), and prints the results as JSON, for comparison with Sail's."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession

from pipelines import bronze, gold, silver, tables

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TENANT, PRODUCT_A, PRODUCT_B, USER = "t-1", "p-a", "p-b", "u-1"
OUTBOX_DDL = ("event_id STRING, feed_seq BIGINT, txid BIGINT, event_type STRING, schema_version INT, tenant_id STRING,"
              " aggregate_type STRING, aggregate_id STRING, payload STRING, actor_user_id STRING, occurred_at TIMESTAMP")
EVENTS_DDL = ("event_id STRING, feed_seq BIGINT, txid BIGINT, event_type STRING, user_id STRING, anonymous_id STRING,"
              " session_id STRING, occurred_at TIMESTAMP, received_at TIMESTAMP, tenant_id STRING, product_id STRING,"
              " sku_id STRING, query STRING, position INT, quantity INT, context STRING")


def _product(seq: int, title: str, minutes: int, product: str = PRODUCT_A) -> tuple:
    payload = {"id": product, "tenant_id": TENANT, "title": title, "status": "active", "version": seq,
               "min_price": 9.5, "created_at": "2026-03-01T12:00:00+00:00",
               "updated_at": (T0 + timedelta(minutes=minutes)).isoformat()}
    return (f"e{seq}", seq, 100 + seq, "product.updated", 1, TENANT, "product", product, json.dumps(payload),
            None, T0 + timedelta(minutes=minutes))


def _event(seq: int, kind: str, session: str, minutes: float, product: str | None = None, query: str | None = None,
           user: str | None = USER, agent: str = "Mozilla/5.0", **context) -> tuple:
    at = T0 + timedelta(minutes=minutes)
    return (f"ev{seq}", seq, 500 + seq, kind, user, None if user else "device", session, at, at, TENANT, product,
            None, query, 0 if kind == "click" else None, 1 if kind in ("add_to_cart", "purchase") else None,
            json.dumps({"user_agent": agent, **context}))


def inputs(spark: SparkSession) -> dict[str, DataFrame]:
    outbox = spark.createDataFrame([
        _product(1, "first", 0), _product(2, "second", 5), _product(3, "late and stale", -10),
        _product(4, "other", 1, PRODUCT_B),
    ], OUTBOX_DDL)
    events = spark.createDataFrame([
        _event(1, "search", "s1", 0, query="Lamp", result_count=12, results_shown=[PRODUCT_A, PRODUCT_B]),
        _event(2, "click", "s1", 1, PRODUCT_A, "lamp"),
        _event(3, "view", "s1", 2, PRODUCT_A), _event(4, "view", "s1", 3, PRODUCT_B),
        _event(5, "add_to_cart", "s1", 4, PRODUCT_A), _event(6, "purchase", "s1", 5, PRODUCT_A),
        _event(7, "view", "s2", 1, PRODUCT_B, user=None), _event(8, "view", "s3", 1, PRODUCT_B, agent="Googlebot"),
        _event(9, "search", "s2", 2, query="chair", user=None, result_count=0, results_shown=[]),
        _event(10, "search", "s2", 3, query="sofa", user=None, result_count="many"),  # malformed: not a count
    ], EVENTS_DDL)
    return {"outbox": outbox, "events": events}


def _rows(frame: DataFrame, drop: tuple[str, ...] = ()) -> list[dict]:
    rows = [row.asDict(recursive=True) for row in frame.drop(*drop).collect()]
    return sorted(json.loads(json.dumps(rows, default=str)), key=lambda row: json.dumps(row, sort_keys=True))


def results(spark: SparkSession) -> dict[str, list[dict]]:
    data = inputs(spark)
    outbox = bronze.transform_bronze("outbox", data["outbox"])
    events = bronze.transform_bronze("shopper_events", data["events"])
    products = silver.ENTITY["products"]
    current = silver.transform_current_state(outbox, products)
    history = silver.transform_history(silver.transform_versions(outbox, products), products.keys)
    clean = silver.transform_clean_events(events)
    empty_items = spark.createDataFrame([], "buyer_id STRING, tenant_id STRING, product_id STRING, quantity INT,"
                                            " created_at TIMESTAMP")
    empty_reviews = spark.createDataFrame([], "buyer_id STRING, tenant_id STRING, product_id STRING, rating INT,"
                                              " updated_at TIMESTAMP")
    catalog = current.withColumn("category_id", current["tenant_id"])
    return {
        "bronze_outbox": _rows(outbox, drop=("ingested_at",)),
        "silver_products": _rows(current),
        "silver_product_history": _rows(history),
        "silver_events": _rows(clean),
        "gold_interactions": _rows(gold.transform_interactions(clean, empty_items, empty_reviews)),
        "gold_sessions": _rows(gold.transform_sessions(clean)),
        "gold_item_popularity": _rows(gold.transform_item_popularity(clean, catalog, T0 + timedelta(hours=1))),
        "gold_search_queries": _rows(gold.transform_search_queries(clean)),
    }


def delta_round_trip(spark: SparkSession, root: str) -> list[dict]:
    """Two guarded MERGE upserts into a Delta table (a newer change, then a stale one and a new
    key), and the table read back."""
    uri, ddl = f"{root}/silver/products", "product_id STRING, title STRING, version INT"
    for changes in ([("p-a", "first", 2)], [("p-a", "stale", 1), ("p-b", "other", 1)]):
        tables.upsert(spark, spark.createDataFrame(changes, ddl), uri, keys=["product_id"],
                      newer_than="s.version > t.version")
    return _rows(tables.read(spark, uri))


if __name__ == "__main__":
    # --configured: on the engine the environment configures (pipelines.engine.get_spark), e.g.
    # classic Spark from MARKETLAKE_SPARK_MASTER; otherwise on plain JVM Spark in local mode.
    from pipelines.engine import get_spark, local_jvm_spark

    if "--delta" in sys.argv:
        json.dump(delta_round_trip(get_spark(), sys.argv[sys.argv.index("--delta") + 1]), sys.stdout)
    else:
        json.dump(results(local_jvm_spark()), sys.stdout)
