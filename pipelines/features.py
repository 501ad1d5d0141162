"""Feature snapshots for the feature store (Feast, feature_repo/): per shopper, product and seller,
the feature values as of a build time `as_of`, computed from silver with only what happened up to
`as_of`. Gold keeps one row per entity and `feature_date` (the build's UTC day) with the build time
as `feature_timestamp`; a later build on the same day replaces that day's row (MERGE), so the
tables are history that training sets join point in time, and the same build run twice changes
nothing.

Prices, stock levels and which SKUs are active are read from silver's current state: a snapshot
records them as of its build, which is what a daily build stores, but a snapshot backfilled for a
past `as_of` holds today's prices and stock. Fulfilment speed reads delivered sub-orders' last
change time, i.e. the delivery (silver keeps no status history of sub-orders).

Feast's offline store reads Parquet exports of these tables (`export_feature_tables`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
from pyarrow import fs
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# gold lists these tables in GOLD_TABLES, and these transforms use its helpers: at call time only.
from pipelines import gold, tables

FEATURE_TABLES = ("user_features", "item_features", "seller_features")
RECENT_DAYS = 30  # frequency and popularity
MONETARY_DAYS = 90  # spend and fulfilment
TOP_CATEGORIES = 5
# Sub-orders that never became a sale.
NOT_PLACED = ("PAYMENT_PENDING", "PAYMENT_FAILED", "CANCELLED")


def _at(as_of: datetime) -> Column:
    return F.lit(as_of).cast("timestamp")


def _within(column: str, as_of: datetime, days: int) -> Column:
    """`column` in the `days` before as_of (as_of included)."""
    return (F.col(column) > _at(as_of) - F.expr(f"INTERVAL {days} DAYS")) & (F.col(column) <= _at(as_of))


def _days_before(as_of: datetime, column: Column) -> Column:
    return (_at(as_of).cast("double") - column.cast("double")) / 86400.0


def _hours(start: str, end: str) -> Column:
    return (F.col(end).cast("double") - F.col(start).cast("double")) / 3600.0


def _snapshot(frame: DataFrame, as_of: datetime) -> DataFrame:
    return frame.withColumn("feature_date", F.to_date(_at(as_of))).withColumn("feature_timestamp", _at(as_of))


def _signals(events: DataFrame, order_items: DataFrame, as_of: datetime) -> DataFrame:
    """(user_key, product_id, weight, at) of every shopper event and order line up to as_of."""
    from_events = (events.where(F.col("product_id").isNotNull() & (F.col("occurred_at") <= _at(as_of)))
                   .select(gold._user_key().alias("user_key"), "product_id", gold._weight().alias("weight"),
                           F.col("event_type"), F.col("occurred_at").alias("at")))
    from_orders = (order_items.where(F.col("created_at") <= _at(as_of))
                   .select(F.col("buyer_id").alias("user_key"), "product_id",
                           (F.col("quantity") * gold.ORDER_LINE_WEIGHT).cast("double").alias("weight"),
                           F.lit("purchase").alias("event_type"), F.col("created_at").alias("at")))
    return from_events.unionByName(from_orders)


def _category_affinities(signals: DataFrame, products: DataFrame) -> DataFrame:
    """Each shopper's strongest categories by positive interaction weight, with their shares."""
    weights = (signals.join(products.select("product_id", "category_id"), "product_id", "inner")
               .where(F.col("category_id").isNotNull())
               .groupBy("user_key", "category_id").agg(F.sum("weight").alias("weight"))
               .where(F.col("weight") > 0))
    by_user = Window.partitionBy("user_key")
    ranked = (weights.withColumn("share", F.col("weight") / F.sum("weight").over(by_user))
              .withColumn("rank", F.row_number().over(by_user.orderBy(F.desc("weight"), "category_id")))
              .where(F.col("rank") <= TOP_CATEGORIES))
    return (ranked.groupBy("user_key")
            .agg(F.sort_array(F.collect_list(F.struct("rank", "category_id", "share"))).alias("_top"))
            .select("user_key", F.col("_top.category_id").alias("top_categories"),
                    F.col("_top.share").alias("top_category_shares")))


def transform_user_features(events: DataFrame, orders: DataFrame, order_items: DataFrame, products: DataFrame,
                            as_of: datetime) -> DataFrame:
    """Recency, frequency and monetary value of every shopper with history up to as_of, and their
    category affinities."""
    seen = events.where(F.col("occurred_at") <= _at(as_of))
    activity = seen.groupBy(gold._user_key().alias("user_key")).agg(
        F.max("occurred_at").alias("_last_event_at"),
        F.count(F.when(_within("occurred_at", as_of, RECENT_DAYS), 1)).alias("events_30d"),
        F.countDistinct(F.when(_within("occurred_at", as_of, RECENT_DAYS), F.col("session_id")))
        .alias("sessions_30d"))
    placed = orders.where(~F.col("status").isin(*NOT_PLACED) & (F.col("placed_at") <= _at(as_of)))
    recent_spend = F.when(_within("placed_at", as_of, MONETARY_DAYS), F.col("grand_total"))
    spending = placed.groupBy(F.col("buyer_id").alias("user_key")).agg(
        F.max("placed_at").alias("_last_order_at"), F.count(F.lit(1)).alias("orders_total"),
        F.count(recent_spend).alias("orders_90d"),
        F.sum("grand_total").cast("double").alias("spend_total"),
        F.coalesce(F.sum(recent_spend), F.lit(0)).cast("double").alias("spend_90d"))
    affinities = _category_affinities(_signals(events, order_items, as_of), products)
    zero = F.lit(0)
    users = (activity.join(spending, "user_key", "full").join(affinities, "user_key", "left")
             .select("user_key",
                     _days_before(as_of, F.col("_last_event_at")).alias("days_since_last_event"),
                     _days_before(as_of, F.col("_last_order_at")).alias("days_since_last_order"),
                     F.coalesce("events_30d", zero).cast("long").alias("events_30d"),
                     F.coalesce("sessions_30d", zero).cast("long").alias("sessions_30d"),
                     F.coalesce("orders_90d", zero).cast("long").alias("orders_90d"),
                     F.coalesce("orders_total", zero).cast("long").alias("orders_total"),
                     F.coalesce("spend_90d", zero).cast("double").alias("spend_90d"),
                     F.coalesce("spend_total", zero).cast("double").alias("spend_total"),
                     (F.col("spend_total") / F.col("orders_total")).alias("avg_order_value"),
                     F.coalesce("top_categories", F.array().cast("array<string>")).alias("top_categories"),
                     F.coalesce("top_category_shares", F.array().cast("array<double>"))
                     .alias("top_category_shares")))
    return _snapshot(users, as_of)


def _popularity(events: DataFrame, products: DataFrame, as_of: datetime) -> DataFrame:
    """gold.item_popularity's windows side by side: score and distinct users per window."""
    windows = gold.transform_item_popularity(events, products, as_of)
    columns = []
    for days in gold.POPULARITY_WINDOWS_DAYS:
        in_window = F.col("window_days") == days
        columns += [F.max(F.when(in_window, F.col("score"))).alias(f"popularity_{days}d"),
                    F.max(F.when(in_window, F.col("unique_users"))).alias(f"unique_users_{days}d")]
    last = max(gold.POPULARITY_WINDOWS_DAYS)
    columns += [F.max(F.when(F.col("window_days") == last, F.col(name))).alias(f"{name}_{last}d")
                for name in ("views", "purchases")]
    return windows.groupBy("product_id").agg(*columns)


def _conversion(signals: DataFrame, as_of: datetime) -> DataFrame:
    """Share of the shoppers who touched a product in 30 days who bought it (event or order line)."""
    recent = signals.where(_within("at", as_of, RECENT_DAYS) & (F.col("weight") > 0))  # no impressions
    return (recent.groupBy("product_id")
            .agg(F.countDistinct("user_key").alias("_visitors"),
                 F.countDistinct(F.when(F.col("event_type") == "purchase", F.col("user_key")))
                 .alias("_buyers"))
            .select("product_id", (F.col("_buyers") / F.col("_visitors")).alias("conversion_rate_30d")))


def _ratings(reviews: DataFrame, key: str, as_of: datetime) -> DataFrame:
    """Mean and count of the reviews written up to as_of and not rejected by moderation."""
    return (reviews.where((F.col("created_at") <= _at(as_of)) & (F.col("moderation_status") != "rejected"))
            .groupBy(key).agg(F.avg("rating").cast("double").alias("rating_avg"),
                              F.count(F.lit(1)).alias("rating_count")))


def _prices(skus: DataFrame) -> DataFrame:
    """Each product's lowest active SKU price."""
    return (skus.where(F.col("is_active"))
            .groupBy("product_id")
            .agg(F.min(F.struct(F.col("price").cast("double").alias("price"), "currency")).alias("_lowest"))
            .select("product_id", "_lowest.price", "_lowest.currency"))


def _stock(skus: DataFrame, inventory: DataFrame) -> DataFrame:
    """Units available (less reservations) over every warehouse, per product."""
    free = F.greatest(F.col("available") - F.coalesce(F.col("reserved"), F.lit(0)), F.lit(0))
    return (inventory.join(skus.where(F.col("is_active")).select("sku_id", "product_id"), "sku_id", "inner")
            .groupBy("product_id").agg(F.sum(free).cast("long").alias("stock_available")))


def transform_item_features(events: DataFrame, order_items: DataFrame, reviews: DataFrame,
                            products: DataFrame, skus: DataFrame, inventory: DataFrame,
                            as_of: datetime) -> DataFrame:
    """Popularity over 1/7/30 days, conversion, rating, price and stock of every catalogue product."""
    catalog = products.where(F.col("created_at").isNull() | (F.col("created_at") <= _at(as_of))) \
        .select("product_id", "tenant_id", "category_id")
    popularity = _popularity(events, products, as_of)
    counts = [c for c in popularity.columns if c != "product_id" and not c.startswith("popularity_")]
    zero = F.lit(0)
    items = (catalog.join(popularity, "product_id", "left")
             .join(_conversion(_signals(events, order_items, as_of), as_of), "product_id", "left")
             .join(_ratings(reviews, "product_id", as_of), "product_id", "left")
             .join(_prices(skus), "product_id", "left")
             .join(_stock(skus, inventory), "product_id", "left")
             .select("product_id", "tenant_id", "category_id",
                     *(F.coalesce(F.col(name), zero).cast("double").alias(name)
                       for name in (f"popularity_{days}d" for days in gold.POPULARITY_WINDOWS_DAYS)),
                     *(F.coalesce(F.col(name), zero).cast("long").alias(name) for name in counts),
                     "conversion_rate_30d", "rating_avg",
                     F.coalesce("rating_count", zero).cast("long").alias("rating_count"), "price", "currency",
                     F.coalesce("stock_available", zero).cast("long").alias("stock_available"))
             .withColumn("in_stock", F.col("stock_available") > 0))
    return _snapshot(items, as_of)


def transform_seller_features(tenants: DataFrame, sub_orders: DataFrame, reviews: DataFrame,
                              as_of: datetime) -> DataFrame:
    """Rating and fulfilment speed of every seller."""
    sellers = (tenants.where(F.col("created_at").isNull() | (F.col("created_at") <= _at(as_of)))
               .select("tenant_id"))
    delivered = sub_orders.where((F.col("status") == "DELIVERED")
                                 & _within("updated_at", as_of, MONETARY_DAYS))
    fulfilment = delivered.groupBy("tenant_id").agg(
        F.avg(_hours("created_at", "updated_at")).alias("fulfilment_hours_avg"),
        F.count(F.lit(1)).alias("delivered_90d"))
    orders = (sub_orders.where(~F.col("status").isin(*NOT_PLACED) & _within("created_at", as_of, RECENT_DAYS))
              .groupBy("tenant_id").agg(F.count(F.lit(1)).alias("seller_orders_30d")))
    zero = F.lit(0)
    rated = _ratings(reviews, "tenant_id", as_of)
    return _snapshot(
        sellers.join(rated, "tenant_id", "left").join(fulfilment, "tenant_id", "left")
        .join(orders, "tenant_id", "left")
        .select("tenant_id", F.col("rating_avg").alias("seller_rating_avg"),
                F.coalesce("rating_count", zero).cast("long").alias("seller_rating_count"),
                "fulfilment_hours_avg", F.coalesce("delivered_90d", zero).cast("long").alias("delivered_90d"),
                F.coalesce("seller_orders_30d", zero).cast("long").alias("seller_orders_30d")),
        as_of)


def export_feature_tables(directory: str) -> dict[str, int]:
    """Write each gold feature table's current version as `<directory>/<table>.parquet` (local path
    or object-store URI), replacing the previous export in one rename; returns rows per table.
    A table not built yet is skipped."""
    local = "://" not in directory
    filesystem, root = fs.FileSystem.from_uri(str(Path(directory).resolve()) if local else directory)
    filesystem.create_dir(root, recursive=True)
    exported = {}
    for name in FEATURE_TABLES:
        uri = gold.gold_uri(name)
        if not tables.exists(uri):
            continue
        snapshots = tables.delta_table(uri).to_pyarrow_table()
        partial = f"{root}/.{name}.parquet.partial"
        pq.write_table(snapshots, partial, filesystem=filesystem)
        filesystem.move(partial, f"{root}/{name}.parquet")
        exported[name] = snapshots.num_rows
    return exported

