"""Bronze: the transactional outbox and the shopper event log, appended to Delta as they commit.

Exactly once: each micro-batch is one Delta commit that also records, in its own commit metadata,
the change-feed position it reached. A rerun resumes from the position of the newest commit, so a
crash before the commit re-reads the batch (nothing was written) and a crash after it resumes past
it (nothing is read twice): no row is lost or duplicated, whatever the moment of the crash. One
ingest per feed runs at a time (a PostgreSQL advisory lock), so two runs cannot append the same
batch. The change feed only hands out settled transactions in (txid, id) order, so rows that
committed out of id order are not skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sqlalchemy import text

from pipelines import pii, tables
from pipelines.settings import lakehouse_settings
from transactional.db import owner_engine
from transactional.errors import Conflict
from transactional.services.change_feed import (
    ArrowConnection, ArrowFeedBatch, Feed, FeedPosition, arrow_connection, read_changes_arrow,
)

FEEDS: tuple[Feed, ...] = ("outbox", "shopper_events")
BRONZE_TABLE = {"outbox": "outbox", "shopper_events": "shopper_events"}
PARTITION_BY = ("event_date", "event_type")
POSITION_KEY = "marketlake.feed_position"
ERASURES = ("system", "gdpr_erasures")

_UUID = pa.string()
_TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_SCHEMA = {
    "outbox": pa.schema([
        ("event_id", _UUID), ("feed_seq", pa.int64()), ("txid", pa.int64()), ("event_type", pa.string()),
        ("schema_version", pa.int32()), ("tenant_id", _UUID), ("aggregate_type", pa.string()),
        ("aggregate_id", pa.string()), ("payload", pa.string()), ("actor_user_id", _UUID),
        ("occurred_at", _TIMESTAMP),
    ]),
    "shopper_events": pa.schema([
        ("event_id", _UUID), ("feed_seq", pa.int64()), ("txid", pa.int64()), ("event_type", pa.string()),
        ("user_id", _UUID), ("anonymous_id", pa.string()), ("session_id", pa.string()),
        ("occurred_at", _TIMESTAMP), ("received_at", _TIMESTAMP), ("tenant_id", _UUID), ("product_id", _UUID),
        ("sku_id", _UUID), ("query", pa.string()), ("position", pa.int32()), ("quantity", pa.int32()),
        ("context", pa.string()),
    ]),
}
_JSON_COLUMNS = {"outbox": "payload", "shopper_events": "context"}
# When the row was committed in PostgreSQL (shopper events: received, not the client's clock).
_COMMITTED_AT = {"outbox": "occurred_at", "shopper_events": "received_at"}


def bronze_uri(feed: Feed) -> str:
    return tables.table_uri("bronze", BRONZE_TABLE[feed])


# --- extract ---------------------------------------------------------------------------------

def _feed_columns(feed: Feed) -> dict[str, str]:
    """The bronze columns as SQL over the feed row (UUIDs and JSON as text); txid and feed_seq come
    with every feed batch."""
    return {name: f"f.{name}::text" if field.type == pa.string() else f"f.{name}"
            for name, field in zip(ARROW_SCHEMA[feed].names, ARROW_SCHEMA[feed], strict=True)
            if name not in ("txid", "feed_seq")}


def extract_changes(connection: ArrowConnection, feed: Feed, after: FeedPosition, limit: int) -> ArrowFeedBatch:
    """The next settled rows of the feed as Arrow (read as the owner: the feed spans every tenant)."""
    return read_changes_arrow(connection, feed, after, _feed_columns(feed), limit)


def changes_to_arrow(feed: Feed, rows: pa.Table) -> pa.Table:
    """Feed rows in the bronze layout, personal data pseudonymised on the way in."""
    schema = ARROW_SCHEMA[feed]
    json_column = _JSON_COLUMNS[feed]
    rows = rows.set_column(rows.schema.get_field_index(json_column), json_column,
                           pii.scrub_json_column(rows[json_column]))
    return rows.select(schema.names).cast(schema)


def commit_lags(feed: Feed, rows: pa.Table, visible: datetime) -> np.ndarray:
    """Seconds from each row's commit in PostgreSQL to `visible`."""
    committed_us = rows[_COMMITTED_AT[feed]].cast(pa.int64()).to_numpy()
    return (visible.timestamp() * 1e6 - committed_us) / 1e6


# --- transform -------------------------------------------------------------------------------

def _about(feed: Feed, changes: DataFrame, user_ids: Sequence[str]):
    """Rows whose subject is one of `user_ids` (their account, orders, payments, reviews, events)."""
    if feed == "shopper_events":
        return F.col("user_id").isin(list(user_ids))
    return (
        ((F.col("aggregate_type") == "user") & F.col("aggregate_id").isin(list(user_ids)))
        | F.get_json_object("payload", "$.buyer_id").isin(list(user_ids))
        | F.get_json_object("payload", "$.user_id").isin(list(user_ids))
    )


def transform_bronze(feed: Feed, changes: DataFrame, erased_user_ids: Sequence[str] = ()) -> DataFrame:
    """Add partition and lineage columns; drop what erased users left behind (GDPR)."""
    if erased_user_ids:
        changes = changes.where(~_about(feed, changes, erased_user_ids))
        if feed == "outbox":
            changes = changes.withColumn(
                "actor_user_id",
                F.when(F.col("actor_user_id").isin(list(erased_user_ids)), F.lit(None)).otherwise(F.col("actor_user_id")))
    return (
        changes
        .withColumn("event_date", F.to_date("occurred_at"))
        .withColumn("ingested_at", F.current_timestamp())
    )


# --- load ------------------------------------------------------------------------------------

def load_bronze(feed: Feed, bronze: DataFrame, reached: FeedPosition) -> None:
    """Append the batch and the feed position it reached in one Delta commit."""
    tables.append(bronze, bronze_uri(feed), partition_by=PARTITION_BY,
                  metadata={POSITION_KEY: {"feed": feed, "txid": reached.txid, "seq": reached.seq}})


def committed_position(spark: SparkSession, feed: Feed) -> FeedPosition:
    """Where the last committed batch left the feed."""
    uri = bronze_uri(feed)
    metadata = tables.latest_commit_metadata(uri, POSITION_KEY)
    if metadata is not None:
        position = metadata[POSITION_KEY]
        return FeedPosition(int(position["txid"]), int(position["seq"]))
    if not tables.exists(uri):
        return FeedPosition()
    # The commit log was cleaned up: the rows themselves carry their feed position.
    newest = tables.read(spark, uri).agg(F.max(F.struct("txid", "feed_seq")).alias("m")).first()["m"]
    return FeedPosition(int(newest["txid"]), int(newest["feed_seq"])) if newest else FeedPosition()


def erased_user_ids(spark: SparkSession) -> list[str]:
    uri = tables.table_uri(*ERASURES)
    if not tables.exists(uri):
        return []
    return [row["user_id"] for row in tables.read(spark, uri).select("user_id").distinct().collect()]


# --- job -------------------------------------------------------------------------------------

@dataclass
class FeedReport:
    feed: str
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    lags: list[float] = field(default_factory=list, repr=False)
    position: FeedPosition = field(default_factory=FeedPosition)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def freshness(self) -> dict[str, float | None]:
        """Seconds from the change in PostgreSQL to its commit in bronze."""
        if not self.lags:
            return {"p50": None, "p95": None}
        p50, p95 = np.percentile(self.lags, [50, 95])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}

    def summary(self) -> dict:
        return {"feed": self.feed, "rows": self.rows, "batches": self.batches,
                "rows_per_second": round(self.rows_per_second, 1), "freshness_seconds": self.freshness(),
                "position": {"txid": self.position.txid, "seq": self.position.seq}}


@contextmanager
def exclusive_ingest(feed: Feed) -> Iterator[None]:
    """Hold the feed's ingest lock (released by PostgreSQL if this process dies)."""
    # A session-level lock on an autocommit connection: no transaction stays open meanwhile.
    with owner_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        key = f"marketlake.bronze.{feed}"
        if not connection.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": key}).scalar():
            raise Conflict(f"another ingest of {feed} is running", field="feed")
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})


def ingest_feed(spark: SparkSession, feed: Feed, *, batch_size: int | None = None,
                on_batch: Callable[[FeedReport], None] | None = None) -> FeedReport:
    """Drain the feed into bronze in micro-batches of `batch_size` rows."""
    limit = batch_size or lakehouse_settings().lakehouse_batch_size
    report = FeedReport(feed)
    started = time.perf_counter()
    with exclusive_ingest(feed), arrow_connection(owner_engine()) as connection:
        position = committed_position(spark, feed)
        erased = erased_user_ids(spark)
        while True:
            batch = extract_changes(connection, feed, position, limit)
            if not batch.rows.num_rows:
                break
            changes = spark.createDataFrame(changes_to_arrow(feed, batch.rows))
            load_bronze(feed, transform_bronze(feed, changes, erased), batch.position)
            report.lags.extend(commit_lags(feed, batch.rows, datetime.now(UTC)).tolist())
            report.rows += batch.rows.num_rows
            report.batches += 1
            position = batch.position
            report.position = position
            if on_batch:
                on_batch(report)
            if batch.rows.num_rows < limit:
                break
    report.position = position
    report.seconds = time.perf_counter() - started
    return report


def ingest(spark: SparkSession, feeds: Sequence[Feed] = FEEDS, *, batch_size: int | None = None,
           on_batch: Callable[[FeedReport], None] | None = None) -> list[FeedReport]:
    return [ingest_feed(spark, feed, batch_size=batch_size, on_batch=on_batch) for feed in feeds]
