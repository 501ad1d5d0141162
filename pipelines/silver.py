"""Silver: typed, deduplicated current state of every business entity, plus history.

Built incrementally from bronze. Each entity is upserted on its business key (plus tenant_id for
tenant-owned entities) with a version guard: a row only replaces the stored one when its change
is newer (the change time, then the feed position), so a late or replayed change never overwrites
a newer version and running the same batch twice changes nothing. The bronze position reached is
kept in `system.checkpoints` after the upserts; a crash in between replays a batch harmlessly.

Change order: `occurred_at` is the trigger's clock_timestamp(); two changes of one row are
serialised by its row lock, so the later change has the later time even when its transaction id
is smaller (an older transaction that wrote the row last).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines import bronze, tables

_TS = "TIMESTAMP"
_MONEY = "DECIMAL(14,2)"
VERSION_COLUMNS = ("_changed_at", "_txid", "_seq")
NEWER = ("s._changed_at > t._changed_at OR (s._changed_at = t._changed_at AND"
         " (s._txid > t._txid OR (s._txid = t._txid AND s._seq > t._seq)))")


@dataclass(frozen=True)
class Entity:
    """A silver current-state table built from one outbox aggregate type."""

    table: str
    aggregate: str
    id_column: str
    fields: str  # the payload's columns as Spark DDL (`id` is renamed to id_column)
    tenant_owned: bool = True
    renames: dict[str, str] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)  # new column -> SQL over the parsed payload

    @property
    def timestamp_columns(self) -> list[str]:
        return re.findall(r"(\w+) TIMESTAMP", self.fields)

    @property
    def json_schema(self) -> str:
        # Sail's from_json wants "yyyy-MM-dd HH:mm:ss" timestamps; Postgres writes ISO 8601 with a
        # "T", which a cast reads on every engine.
        return self.fields.replace(" TIMESTAMP", " STRING")

    @property
    def keys(self) -> list[str]:
        return ["tenant_id", self.id_column] if self.tenant_owned else [self.id_column]


ENTITIES = (
    Entity("tenants", "tenant", "tenant_id", tenant_owned=False,
           fields=f"id STRING, slug STRING, legal_name STRING, store_name STRING, status STRING, "
                  f"kyc_status STRING, plan STRING, tax_rate DECIMAL(5,4), commission_rate DECIMAL(5,4), "
                  f"created_at {_TS}, updated_at {_TS}"),
    Entity("users", "user", "user_id", tenant_owned=False,
           fields=f"id STRING, email STRING, phone STRING, role STRING, tenant_id STRING, is_active BOOLEAN, "
                  f"created_at {_TS}, updated_at {_TS}",
           # Bronze already holds keyed pseudonyms (pipelines.pii); the names say so.
           renames={"email": "email_pseudonym", "phone": "phone_pseudonym"}),
    Entity("categories", "category", "category_id", tenant_owned=False,
           fields=f"id STRING, parent_id STRING, slug STRING, name STRING, created_at {_TS}"),
    Entity("products", "product", "product_id",
           fields=f"id STRING, tenant_id STRING, external_ref STRING, title STRING, brand STRING, "
                  f"category_id STRING, status STRING, version INT, min_price {_MONEY}, "
                  f"rating_avg DECIMAL(3,2), rating_count INT, deleted_at {_TS}, created_at {_TS}, updated_at {_TS}"),
    Entity("skus", "sku", "sku_id",
           fields=f"id STRING, tenant_id STRING, product_id STRING, sku_code STRING, price {_MONEY}, "
                  f"currency STRING, weight_grams INT, low_stock_threshold INT, is_active BOOLEAN, created_at {_TS}, "
                  f"updated_at {_TS}"),
    Entity("warehouses", "warehouse", "warehouse_id",
           fields=f"id STRING, tenant_id STRING, code STRING, name STRING, created_at {_TS}"),
    Entity("inventory", "inventory", "inventory_id",
           fields=f"id STRING, tenant_id STRING, sku_id STRING, warehouse_id STRING, available INT, "
                  f"reserved INT, updated_at {_TS}"),
    Entity("orders", "order", "order_id", tenant_owned=False,
           fields=f"id STRING, buyer_id STRING, status STRING, currency STRING, items_total {_MONEY}, "
                  f"tax_total {_MONEY}, shipping_total {_MONEY}, grand_total {_MONEY}, "
                  f"shipping_address STRUCT<city: STRING, country: STRING>, shipping_method STRING, "
                  f"payment_method STRING, failure_reason STRING, placed_at {_TS}, updated_at {_TS}",
           derived={"shipping_city": "shipping_address.city", "shipping_country": "shipping_address.country"}),
    Entity("sub_orders", "sub_order", "sub_order_id",
           fields=f"id STRING, order_id STRING, tenant_id STRING, buyer_id STRING, status STRING, "
                  f"items_total {_MONEY}, tax_total {_MONEY}, shipping_total {_MONEY}, commission {_MONEY}, "
                  f"created_at {_TS}, updated_at {_TS}"),
    Entity("order_items", "order_item", "order_item_id",
           fields=f"id STRING, order_id STRING, sub_order_id STRING, tenant_id STRING, buyer_id STRING, "
                  f"product_id STRING, sku_id STRING, quantity INT, unit_price {_MONEY}, created_at {_TS}"),
    Entity("payments", "payment", "payment_id", tenant_owned=False,
           fields=f"id STRING, order_id STRING, buyer_id STRING, attempt INT, provider STRING, method STRING, "
                  f"status STRING, amount {_MONEY}, refunded_amount {_MONEY}, currency STRING, "
                  f"failure_reason STRING, created_at {_TS}, updated_at {_TS}"),
    Entity("refunds", "refund", "refund_id",
           fields=f"id STRING, payment_id STRING, sub_order_id STRING, tenant_id STRING, buyer_id STRING, "
                  f"amount {_MONEY}, status STRING, created_at {_TS}"),
    Entity("reviews", "review", "review_id",
           fields=f"id STRING, tenant_id STRING, product_id STRING, order_item_id STRING, buyer_id STRING, "
                  f"rating INT, comment STRING, moderation_status STRING, created_at {_TS}, updated_at {_TS}"),
)
ENTITY = {entity.table: entity for entity in ENTITIES}
CHECKPOINTS = ("system", "checkpoints")
CHECKPOINT_SCHEMA = "job STRING, txid BIGINT, seq BIGINT, updated_at TIMESTAMP"

# Cleaned shopper events: which traffic is not a person.
BOT_USER_AGENT = r"(?i)(bot|crawler|spider|headless|scrapy|curl|wget|python-requests|httpclient)"
MAX_EVENTS_PER_SESSION_MINUTE = 120


def silver_uri(table: str) -> str:
    return tables.table_uri("silver", table)


# --- transforms (pure: DataFrames in, DataFrame out) ------------------------------------------

def _latest_per_key(df: DataFrame, keys: Sequence[str]) -> DataFrame:
    newest_first = Window.partitionBy(*keys).orderBy(*(F.col(c).desc() for c in VERSION_COLUMNS))
    return df.withColumn("_rank", F.row_number().over(newest_first)).where("_rank = 1").drop("_rank")


def transform_versions(changes: DataFrame, entity: Entity) -> DataFrame:
    """Every change of the entity as a typed row with its version columns."""
    parsed = (
        changes.where(F.col("aggregate_type") == entity.aggregate)
        .select(F.from_json("payload", entity.json_schema).alias("p"), "occurred_at", "txid", "feed_seq",
                "event_type", "event_id")
        .select("p.*", F.col("occurred_at").alias("_changed_at"), F.col("txid").alias("_txid"),
                F.col("feed_seq").alias("_seq"), F.col("event_type").endswith(".deleted").alias("_deleted"),
                F.col("event_id").alias("_event_id"))
        .withColumnRenamed("id", entity.id_column)
    )
    for column in entity.timestamp_columns:
        parsed = parsed.withColumn(column, F.col(column).cast("timestamp"))
    for new, expression in entity.derived.items():
        parsed = parsed.withColumn(new, F.expr(expression))
    if entity.derived:
        parsed = parsed.drop(*{expression.split(".")[0] for expression in entity.derived.values()})
    for old, new in entity.renames.items():
        parsed = parsed.withColumnRenamed(old, new)
    return parsed


def transform_current_state(changes: DataFrame, entity: Entity) -> DataFrame:
    """The newest version of each key among `changes` (bronze outbox rows)."""
    return _latest_per_key(transform_versions(changes, entity), entity.keys)


def transform_history(versions: DataFrame, keys: Sequence[str], *, tracked: Sequence[str] | None = None) -> DataFrame:
    """SCD type 2: one row per version with valid_from/valid_to (null while current) and is_current.

    `versions` holds every known version of the affected keys (stored history and new changes,
    possibly overlapping); with `tracked`, only changes of those columns open a new version."""
    ordered = Window.partitionBy(*keys).orderBy(*VERSION_COLUMNS)
    distinct = versions.dropDuplicates([*keys, "_txid", "_seq"])
    if tracked:
        distinct = (
            distinct.withColumn("_previous", F.lag(F.struct(*tracked)).over(ordered))
            .where(F.col("_previous").isNull() | (F.col("_previous") != F.struct(*tracked)))
            .drop("_previous")
        )
    return (
        distinct
        .withColumn("valid_from", F.col("_changed_at"))
        .withColumn("valid_to", F.lead("_changed_at").over(ordered))
        .withColumn("is_current", F.col("valid_to").isNull())
    )


def _user_agent() -> Column:
    return F.coalesce(F.get_json_object("context", "$.user_agent"), F.lit(""))


def transform_clean_events(events: DataFrame) -> DataFrame:
    """Shopper events without bots and duplicates: one row per event_id, and one per identical
    (session, type, product, query, time) sent twice under different ids by a retrying client."""
    per_minute = Window.partitionBy("session_id", F.date_trunc("minute", "occurred_at"))
    return (
        events
        .dropDuplicates(["event_id"])
        .dropDuplicates(["session_id", "event_type", "product_id", "query", "occurred_at"])
        # Impressions come as lists (the serving API records one per item shown), so only what the
        # visitor did counts towards a burst no person produces.
        .withColumn("_burst", F.count(F.when(F.col("event_type") != "impression", 1)).over(per_minute))
        .where(~_user_agent().rlike(BOT_USER_AGENT) & (F.col("_burst") <= MAX_EVENTS_PER_SESSION_MINUTE))
        .select("event_id", "event_type", "user_id", "anonymous_id", "session_id", "occurred_at", "received_at",
                "tenant_id", "product_id", "sku_id", "query", "position", "quantity", "context", "event_date",
                F.col("txid").alias("_txid"), F.col("feed_seq").alias("_seq"))
    )


# --- extract / load ---------------------------------------------------------------------------

def _checkpoint(spark: SparkSession, job: str) -> tuple[int, int]:
    uri = tables.table_uri(*CHECKPOINTS)
    if not tables.exists(uri):
        return 0, 0
    row = tables.read(spark, uri).where(F.col("job") == job).first()
    return (row["txid"], row["seq"]) if row else (0, 0)


def save_checkpoint(spark: SparkSession, job: str, txid: int, seq: int) -> None:
    row = spark.createDataFrame([(job, txid, seq)], "job STRING, txid BIGINT, seq BIGINT") \
        .withColumn("updated_at", F.current_timestamp())
    tables.upsert(spark, row, tables.table_uri(*CHECKPOINTS), keys=["job"],
                  newer_than="s.txid > t.txid OR (s.txid = t.txid AND s.seq > t.seq)")


def extract_bronze_changes(spark: SparkSession, feed: str, job: str) -> DataFrame | None:
    """Bronze rows past the job's checkpoint (None when bronze does not exist yet)."""
    uri = bronze.bronze_uri(feed)
    if not tables.exists(uri):
        return None
    txid, seq = _checkpoint(spark, job)
    return tables.read(spark, uri).where(
        (F.col("txid") > txid) | ((F.col("txid") == txid) & (F.col("feed_seq") > seq)))


def _reached(changes: DataFrame) -> tuple[int, int] | None:
    newest = changes.agg(F.max(F.struct("txid", "feed_seq")).alias("m")).first()["m"]
    return (newest["txid"], newest["feed_seq"]) if newest else None


def load_current_state(spark: SparkSession, current: DataFrame, entity: Entity) -> None:
    tables.upsert(spark, current, silver_uri(entity.table), keys=entity.keys, newer_than=NEWER)


def load_history(spark: SparkSession, changes: DataFrame, entity: Entity, table: str,
                 tracked: Sequence[str] | None = None) -> None:
    """Recompute the history of the keys that changed and upsert it (new versions inserted,
    closed versions get their valid_to)."""
    uri = silver_uri(table)
    new_versions = transform_versions(changes, entity)
    if tracked:
        new_versions = new_versions.select(*entity.keys, *tracked, *VERSION_COLUMNS, "_deleted", "_event_id")
    if tables.exists(uri):
        stored = tables.read(spark, uri).drop("valid_from", "valid_to", "is_current")
        affected = stored.join(new_versions.select(*entity.keys).distinct(), on=entity.keys, how="left_semi")
        new_versions = affected.unionByName(new_versions.select(*affected.columns))
    history = transform_history(new_versions, entity.keys, tracked=tracked)
    tables.upsert(spark, history, uri, keys=[*entity.keys, "_txid", "_seq"],
                  newer_than="NOT (t.valid_to <=> s.valid_to)")


HISTORIES = (("product_history", "products", None), ("sku_prices", "skus", ("price", "currency")))


@dataclass
class SilverReport:
    changes: int = 0
    events: int = 0
    tables: list[str] = field(default_factory=list)


def build_silver(spark: SparkSession) -> SilverReport:
    """Bring every silver table up to date with bronze."""
    report = SilverReport()
    changes = extract_bronze_changes(spark, "outbox", "silver.outbox")
    if changes is not None:
        reached = _reached(changes)
        if reached:
            report.changes = changes.count()
            present = {row["aggregate_type"] for row in changes.select("aggregate_type").distinct().collect()}
            for entity in ENTITIES:
                if entity.aggregate in present:
                    load_current_state(spark, transform_current_state(changes, entity), entity)
                    report.tables.append(entity.table)
            for table, source, tracked in HISTORIES:
                if ENTITY[source].aggregate in present:
                    load_history(spark, changes, ENTITY[source], table, tracked)
                    report.tables.append(table)
            save_checkpoint(spark, "silver.outbox", *reached)
    events = extract_bronze_changes(spark, "shopper_events", "silver.events")
    if events is not None:
        reached = _reached(events)
        if reached:
            report.events = events.count()
            tables.upsert(spark, transform_clean_events(events), silver_uri("events"), keys=["event_id"])
            report.tables.append("events")
            save_checkpoint(spark, "silver.events", *reached)
    return report
