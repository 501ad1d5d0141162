"""Data-subject requests in the lakehouse: erase (right to be forgotten) and export (right of
access) one user. PostgreSQL's half is `transactional.services.gdpr`; `marketlake gdpr erase|export`
runs both, PostgreSQL first.

Erasure records the user in `system.gdpr_erasures` so later change data about them is dropped at
the lakehouse's door (that list is the one place the lakehouse still names them, by their now
meaningless id), deletes their rows from every lakehouse table, and vacuums those tables with zero
retention so no older file version keeps them (time travel to before the erasure ends, by
design). Bronze ingest is held off meanwhile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines import bronze, tables

# Columns that name the person a lakehouse row is about.
SUBJECT_COLUMNS = ("user_id", "buyer_id", "user_key")


@dataclass
class ErasureReport:
    user_id: str
    tables: dict[str, int] = field(default_factory=dict)  # layer.table -> rows removed
    vacuumed_files: int = 0


def _subject_condition(layer: str, name: str, columns: list[str], user_id: str) -> str | None:
    """SQL selecting the rows of one lakehouse table that are about the user."""
    quoted = f"'{user_id}'"
    if (layer, name) == ("bronze", "outbox"):
        return (f"(aggregate_type = 'user' AND aggregate_id = {quoted})"
                f" OR get_json_object(payload, '$.buyer_id') = {quoted}"
                f" OR get_json_object(payload, '$.user_id') = {quoted}")
    if (layer, name) == ("quality", "results"):
        return f"observed LIKE '%{user_id}%'"  # failing samples may quote the user's keys
    present = [column for column in SUBJECT_COLUMNS if column in columns]
    return " OR ".join(f"{column} = {quoted}" for column in present) or None


def _user_tables(spark: SparkSession, user_id: str):
    """(layer, name, uri, condition) of every lakehouse table holding rows about the user."""
    for layer, name, uri in tables.all_tables():
        if (layer, name) == bronze.ERASURES:
            continue
        columns = tables.read(spark, uri).columns
        condition = _subject_condition(layer, name, columns, user_id)
        if condition:
            yield layer, name, uri, condition, "actor_user_id" in columns


def erase_from_lakehouse(spark: SparkSession, user_id: uuid.UUID) -> ErasureReport:
    user_id = str(user_id)
    report = ErasureReport(user_id)
    erasure = spark.createDataFrame([(user_id,)], "user_id STRING").withColumn("erased_at", F.current_timestamp())
    tables.upsert(spark, erasure, tables.table_uri(*bronze.ERASURES), keys=["user_id"])
    with bronze.exclusive_ingest("outbox"), bronze.exclusive_ingest("shopper_events"):
        for layer, name, uri, condition, has_actor in _user_tables(spark, user_id):
            removed = tables.read(spark, uri).where(condition).count()
            if removed:
                tables.delete_where(spark, uri, condition)
            if has_actor and tables.read(spark, uri).where(f"actor_user_id = '{user_id}'").count():
                spark.sql(f"UPDATE delta.`{uri}` SET actor_user_id = NULL WHERE actor_user_id = '{user_id}'")
                removed += 1
            if removed:
                report.tables[f"{layer}.{name}"] = removed
                report.vacuumed_files += len(tables.vacuum(uri, timedelta(0)))
    return report


def export_from_lakehouse(spark: SparkSession, user_id: uuid.UUID) -> dict[str, list[dict]]:
    """Every lakehouse row about the user, per `layer.table` that holds any."""
    held = {}
    for layer, name, uri, condition, _ in _user_tables(spark, str(user_id)):
        rows = [row.asDict(recursive=True) for row in tables.read(spark, uri).where(condition).collect()]
        if rows:
            held[f"{layer}.{name}"] = rows
    return held
