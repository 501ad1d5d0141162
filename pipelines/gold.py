"""Gold: the tables analytics (dbt), features (Feast) and model training read. Schemas are
documented in pipelines/README.md.

Each table is a pure function of silver, recomputed whole and published (overwritten) only when
its quality suite and those of the silver tables it reads pass (pipelines.quality).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines import features, silver, tables

# Implicit feedback weight of each shopper action; an order line and a review add their own.
EVENT_WEIGHTS = {"impression": 0.0, "view": 1.0, "click": 2.0, "search": 0.0, "add_to_cart": 4.0,
                 "remove_from_cart": -2.0, "purchase": 8.0}
ORDER_LINE_WEIGHT = 8.0
POPULARITY_WINDOWS_DAYS = (1, 7, 30)
SNAPSHOT_NEWER = "s.feature_timestamp >= t.feature_timestamp"  # a day's latest build wins


def _weight() -> F.Column:
    weight = F.lit(0.0)
    for event_type, value in EVENT_WEIGHTS.items():
        weight = F.when(F.col("event_type") == event_type, F.lit(value)).otherwise(weight)
    return weight


def _user_key() -> F.Column:
    """Signed-in shoppers by id, anonymous ones by their device id (prefixed, never confused)."""
    return F.coalesce(F.col("user_id"), F.concat(F.lit("anon:"), F.col("anonymous_id")))


def _count(event_type: str) -> F.Column:
    return F.sum(F.when(F.col("event_type") == event_type, 1).otherwise(0)).cast("long")


def transform_interactions(events: DataFrame, order_items: DataFrame, reviews: DataFrame) -> DataFrame:
    """(user, item) implicit feedback: weighted signal, counts by kind, last interaction."""
    from_events = (
        events.where(F.col("product_id").isNotNull())
        .select(_user_key().alias("user_key"), F.col("user_id").isNull().alias("is_anonymous"), "tenant_id",
                "product_id", "event_type", _weight().alias("weight"), F.col("occurred_at").alias("at"))
    )
    from_orders = order_items.select(
        F.col("buyer_id").alias("user_key"), F.lit(False).alias("is_anonymous"), "tenant_id", "product_id",
        F.lit("order").alias("event_type"), (F.col("quantity") * ORDER_LINE_WEIGHT).cast("double").alias("weight"),
        F.col("created_at").alias("at"))
    from_reviews = reviews.select(
        F.col("buyer_id").alias("user_key"), F.lit(False).alias("is_anonymous"), "tenant_id", "product_id",
        F.lit("review").alias("event_type"), (F.col("rating") - 3).cast("double").alias("weight"),
        F.col("updated_at").alias("at"))
    signals = from_events.unionByName(from_orders).unionByName(from_reviews)
    return (
        signals.groupBy("user_key", "product_id")
        .agg(F.first("tenant_id", ignorenulls=True).alias("tenant_id"), F.max("is_anonymous").alias("is_anonymous"),
             F.sum("weight").alias("weight"), F.count(F.lit(1)).alias("interactions"),
             _count("view").alias("views"), _count("click").alias("clicks"),
             _count("add_to_cart").alias("add_to_carts"), _count("purchase").alias("purchases"),
             _count("order").alias("order_lines"), F.max("at").alias("last_interaction_at"))
    )


def transform_sessions(events: DataFrame) -> DataFrame:
    """Each session's ordered item sequence (consecutive repeats of one item kept once)."""
    in_order = Window.partitionBy("session_id").orderBy("occurred_at", "event_id")
    items = (
        events.where(F.col("product_id").isNotNull())
        .withColumn("_previous", F.lag("product_id").over(in_order))
        .where(F.col("_previous").isNull() | (F.col("_previous") != F.col("product_id")))
    )
    sequences = items.groupBy("session_id").agg(
        F.sort_array(F.collect_list(F.struct("occurred_at", "event_id", "product_id", "event_type")))
        .alias("_steps"))
    totals = events.groupBy("session_id").agg(
        F.first(_user_key(), ignorenulls=True).alias("user_key"), F.min("occurred_at").alias("started_at"),
        F.max("occurred_at").alias("ended_at"), F.count(F.lit(1)).alias("events"),
        _count("purchase").alias("purchases"))
    return (
        totals.join(sequences, "session_id", "left")
        .select("session_id", "user_key", "started_at", "ended_at", "events", "purchases",
                F.col("_steps.product_id").alias("items"), F.col("_steps.event_type").alias("item_events"))
        .withColumn("item_count", F.coalesce(F.size("items"), F.lit(0)))
        .withColumn("items", F.coalesce("items", F.array().cast("array<string>")))
        .withColumn("item_events", F.coalesce("item_events", F.array().cast("array<string>")))
    )


def transform_item_popularity(events: DataFrame, products: DataFrame, as_of: datetime) -> DataFrame:
    """Per item and trailing window: counts, a weighted score, and rank within category and tenant."""
    catalog = products.select("product_id", "category_id", F.col("tenant_id").alias("product_tenant_id"))
    windows = events.sparkSession.createDataFrame([(days,) for days in POPULARITY_WINDOWS_DAYS], "window_days INT")
    scored = (
        events.where(F.col("product_id").isNotNull())
        .crossJoin(windows)
        .where(F.col("occurred_at") > F.lit(as_of) - F.expr("make_interval(0, 0, 0, window_days)"))
        .where(F.col("occurred_at") <= F.lit(as_of))
        .groupBy("window_days", "product_id")
        .agg(_count("view").alias("views"), _count("click").alias("clicks"),
             _count("add_to_cart").alias("add_to_carts"), _count("purchase").alias("purchases"),
             F.countDistinct(_user_key()).alias("unique_users"), F.sum(_weight()).alias("score"))
        .join(catalog, "product_id", "inner")
        .withColumnRenamed("product_tenant_id", "tenant_id")
        .withColumn("as_of", F.lit(as_of).cast("timestamp"))
    )
    by_category = Window.partitionBy("window_days", "category_id").orderBy(F.desc("score"), "product_id")
    by_tenant = Window.partitionBy("window_days", "tenant_id").orderBy(F.desc("score"), "product_id")
    return (scored.withColumn("rank_in_category", F.row_number().over(by_category))
            .withColumn("rank_in_tenant", F.row_number().over(by_tenant)))


def transform_seller_daily(sub_orders: DataFrame, order_items: DataFrame, refunds: DataFrame,
                           events: DataFrame, reviews: DataFrame) -> DataFrame:
    """One row per seller and day: orders, units, revenue, commission, refunds, traffic, ratings."""
    sales = (
        sub_orders.where(~F.col("status").isin("PAYMENT_PENDING", "PAYMENT_FAILED", "CANCELLED"))
        .select("tenant_id", "sub_order_id", F.to_date("created_at").alias("date"), "items_total", "commission")
    )
    daily_orders = sales.groupBy("tenant_id", "date").agg(
        F.countDistinct("sub_order_id").alias("orders"), F.sum("items_total").alias("gross_revenue"),
        F.sum("commission").alias("commission"))
    units = (order_items.join(sales.select("sub_order_id", "date"), "sub_order_id", "inner")
             .groupBy("tenant_id", "date").agg(F.sum("quantity").cast("long").alias("units")))
    refunded = (refunds.where(F.col("status") == "succeeded")
                .groupBy("tenant_id", F.to_date("created_at").alias("date"))
                .agg(F.sum("amount").alias("refunds")))
    traffic = (events.where(F.col("tenant_id").isNotNull())
               .groupBy("tenant_id", F.to_date("occurred_at").alias("date"))
               .agg(_count("view").alias("product_views"), F.countDistinct("session_id").alias("sessions")))
    rated = (reviews.groupBy("tenant_id", F.to_date("created_at").alias("date"))
             .agg(F.count(F.lit(1)).alias("reviews"), F.avg("rating").alias("avg_rating")))
    zero = F.lit(0)
    return (
        daily_orders.join(units, ["tenant_id", "date"], "full")
        .join(refunded, ["tenant_id", "date"], "full")
        .join(traffic, ["tenant_id", "date"], "full")
        .join(rated, ["tenant_id", "date"], "full")
        .select("tenant_id", "date",
                F.coalesce("orders", zero).cast("long").alias("orders"),
                F.coalesce("units", zero).cast("long").alias("units"),
                F.coalesce("gross_revenue", zero).cast("decimal(18,2)").alias("gross_revenue"),
                F.coalesce("commission", zero).cast("decimal(18,2)").alias("commission"),
                F.coalesce("refunds", zero).cast("decimal(18,2)").alias("refunds"),
                F.coalesce("product_views", zero).cast("long").alias("product_views"),
                F.coalesce("sessions", zero).cast("long").alias("sessions"),
                F.coalesce("reviews", zero).cast("long").alias("reviews"),
                "avg_rating")
        .withColumn("conversion_rate",
                    F.when(F.col("sessions") > 0, F.col("orders") / F.col("sessions")).otherwise(F.lit(None)))
    )


# What a client reported in an event's context; null when absent or malformed (context is free-form JSON).
def _reported_count(key: str) -> F.Column:
    count = F.expr(f"try_cast(get_json_object(context, '$.{key}') AS INT)")
    return F.when(count >= 0, count)


def _reported_ids(key: str) -> F.Column:
    return F.coalesce(F.from_json(F.get_json_object("context", f"$.{key}"), "ARRAY<STRING>"),
                      F.array().cast("array<string>"))


def transform_search_queries(events: DataFrame) -> DataFrame:
    """Every search with what it found (`result_count`, `shown_products`, as the client reported
    them in the event's context) and what followed in its session: results clicked, and whether a
    clicked result was bought (added to cart or purchased) afterwards."""
    searches = (events.where(F.col("event_type") == "search")
                .select("event_id", "session_id", _user_key().alias("user_key"), "tenant_id",
                        F.col("query").alias("raw_query"), F.lower(F.trim("query")).alias("query"),
                        F.col("occurred_at").alias("searched_at"),
                        _reported_count("result_count").alias("result_count"),
                        _reported_ids("results_shown").alias("shown_products")))
    next_search = Window.partitionBy("session_id").orderBy("searched_at", "event_id")
    searches = searches.withColumn("_until", F.lead("searched_at").over(next_search))
    clicks = (events.where((F.col("event_type") == "click") & F.col("query").isNotNull())
              .select("session_id", F.lower(F.trim("query")).alias("query"), F.col("product_id").alias("clicked"),
                      F.col("position").alias("click_position"), F.col("occurred_at").alias("clicked_at")))
    buys = (events.where(F.col("event_type").isin("add_to_cart", "purchase"))
            .select("session_id", F.col("product_id").alias("bought"), F.col("occurred_at").alias("bought_at")))
    followed = (
        searches.join(clicks, ["session_id", "query"], "left")
        .where(F.col("clicked_at").isNull()
               | ((F.col("clicked_at") >= F.col("searched_at"))
                  & (F.col("_until").isNull() | (F.col("clicked_at") < F.col("_until")))))
    )
    bought = (followed.join(buys, "session_id", "left")
              .where((F.col("bought") == F.col("clicked")) & (F.col("bought_at") >= F.col("clicked_at")))
              .select("event_id", "bought").distinct()
              .groupBy("event_id").agg(F.collect_set("bought").alias("purchased_products")))
    outcome = (followed.groupBy("event_id", "session_id", "user_key", "tenant_id", "raw_query", "query",
                                "searched_at")
               .agg(F.collect_set("clicked").alias("clicked_products"),
                    F.min("click_position").alias("first_click_position")))
    return (
        outcome.join(bought, "event_id", "left")
        .join(searches.select("event_id", "result_count", "shown_products"), "event_id", "left")
        .withColumn("purchased_products", F.coalesce("purchased_products", F.array().cast("array<string>")))
        .withColumn("clicks", F.size("clicked_products"))
        .withColumn("outcome", F.when(F.size("purchased_products") > 0, "purchased")
                    .when(F.col("clicks") > 0, "clicked").otherwise("abandoned"))
        .withColumnRenamed("event_id", "search_event_id")
    )


@dataclass(frozen=True)
class GoldTable:
    name: str
    reads: tuple[str, ...]  # silver tables
    build: Callable[..., DataFrame]
    keys: tuple[str, ...]
    # None: the table is replaced by each build. A SQL condition over s. (candidate) and t. (stored):
    # the candidate is MERGEd on `keys`, replacing a stored row only where it holds (history tables).
    merge_when: str | None = None


GOLD_TABLES = (
    GoldTable("interactions", ("events", "order_items", "reviews"),
              lambda s, as_of: transform_interactions(s["events"], s["order_items"], s["reviews"]),
              ("user_key", "product_id")),
    GoldTable("sessions", ("events",), lambda s, as_of: transform_sessions(s["events"]), ("session_id",)),
    GoldTable("item_popularity", ("events", "products"),
              lambda s, as_of: transform_item_popularity(s["events"], s["products"], as_of),
              ("window_days", "product_id")),
    GoldTable("seller_daily", ("sub_orders", "order_items", "refunds", "events", "reviews"),
              lambda s, as_of: transform_seller_daily(s["sub_orders"], s["order_items"], s["refunds"], s["events"],
                                                      s["reviews"]),
              ("tenant_id", "date")),
    GoldTable("search_queries", ("events",), lambda s, as_of: transform_search_queries(s["events"]),
              ("search_event_id",)),
    # Dated feature snapshots for the feature store (pipelines.features): history, one row per day.
    GoldTable("user_features", ("events", "orders", "order_items", "products"),
              lambda s, as_of: features.transform_user_features(s["events"], s["orders"], s["order_items"],
                                                                s["products"], as_of),
              ("user_key", "feature_date"), SNAPSHOT_NEWER),
    GoldTable("item_features", ("events", "order_items", "reviews", "products", "skus", "inventory"),
              lambda s, as_of: features.transform_item_features(s["events"], s["order_items"], s["reviews"],
                                                                s["products"], s["skus"], s["inventory"], as_of),
              ("product_id", "feature_date"), SNAPSHOT_NEWER),
    GoldTable("seller_features", ("tenants", "sub_orders", "reviews"),
              lambda s, as_of: features.transform_seller_features(s["tenants"], s["sub_orders"], s["reviews"], as_of),
              ("tenant_id", "feature_date"), SNAPSHOT_NEWER),
)


def gold_uri(name: str) -> str:
    return tables.table_uri("gold", name)


def _silver_schema(table: str) -> str:
    """The columns a silver table has, for reading one that does not exist yet as empty."""
    if table == "events":
        return ("event_id STRING, event_type STRING, user_id STRING, anonymous_id STRING, session_id STRING, "
                "occurred_at TIMESTAMP, received_at TIMESTAMP, tenant_id STRING, product_id STRING, sku_id STRING, "
                "query STRING, position INT, quantity INT, context STRING, event_date DATE, _txid BIGINT, "
                "_seq BIGINT")
    entity = silver.ENTITY[table]
    fields = re.sub(r", \w+ STRUCT<[^>]*>", "", entity.fields)
    ddl = re.sub(r"^id STRING", f"{entity.id_column} STRING", fields)
    for old, new in entity.renames.items():
        ddl = re.sub(rf"\b{old} ", f"{new} ", ddl)
    return ddl + ", _changed_at TIMESTAMP, _txid BIGINT, _seq BIGINT, _deleted BOOLEAN, _event_id STRING"


def extract_silver(spark: SparkSession, names: set[str]) -> dict[str, DataFrame]:
    """Current silver tables (soft-deleted rows left out); a table not built yet reads as empty."""
    frames = {}
    for name in names:
        frame = tables.read_or_empty(spark, silver.silver_uri(name), _silver_schema(name))
        frames[name] = frame.where(~F.col("_deleted")) if "_deleted" in frame.columns else frame
    return frames


@dataclass
class GoldReport:
    published: list[str]
    blocked: dict[str, list[str]]
    results: list
    run_id: str

    def summary(self) -> dict:
        return {"run_id": self.run_id, "published": self.published, "blocked": self.blocked,
                "suites": [result.summary() for result in self.results]}


def validate_silver(spark: SparkSession) -> dict[str, object]:
    """Run every silver suite on the stored table (a table not built yet passes, empty)."""
    from pipelines import quality

    results = {}
    for qualified in quality.SUITES:
        layer, name = qualified.split(".")
        if layer == "silver" and tables.exists(silver.silver_uri(name)):
            results[name] = quality.validate(spark, qualified, tables.read(spark, silver.silver_uri(name)))
    return results


def build_gold(spark: SparkSession, as_of: datetime | None = None) -> GoldReport:
    """Recompute every gold table from silver and publish those whose gates pass."""
    from pipelines import quality

    as_of = as_of or datetime.now(UTC)
    silver_results = validate_silver(spark)
    frames = extract_silver(spark, {name for table in GOLD_TABLES for name in table.reads})
    results = list(silver_results.values())
    published, blocked = [], {}
    for table in GOLD_TABLES:
        upstream = [f"silver.{name}: {failure}" for name in table.reads if name in silver_results
                    for failure in silver_results[name].failures]
        if upstream:
            blocked[table.name] = upstream
            continue
        candidate = table.build(frames, as_of)
        result = quality.validate(spark, f"gold.{table.name}", candidate)
        results.append(result)
        if not result.success:
            blocked[table.name] = [f"gold.{table.name}: {failure}" for failure in result.failures]
            continue
        if table.merge_when:
            tables.upsert(spark, candidate, gold_uri(table.name), keys=table.keys, newer_than=table.merge_when)
        else:
            tables.overwrite(candidate, gold_uri(table.name))
        published.append(table.name)
    return GoldReport(published, blocked, results, quality.record(spark, results))
