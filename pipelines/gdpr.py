"""Data-subject requests: erase (right to be forgotten) and export (right of access) one user.

Erasure anonymises the user in PostgreSQL (identity, addresses, tokens, the captured copies of
them in the outbox and audit log), records the user in `system.gdpr_erasures` so later change
data about them is dropped at the lakehouse's door (that list is the one place the lakehouse still
names them, by their now meaningless id), deletes their rows from every lakehouse
table, and vacuums those tables with zero retention so no older file version keeps them
(time travel to before the erasure ends, by design). Bronze ingest is held off meanwhile.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sqlalchemy import Connection, text

from pipelines import bronze, tables
from transactional.db import owner_engine
from transactional.errors import BadRequest, NotFound

# Columns that name the person a lakehouse row is about.
SUBJECT_COLUMNS = ("user_id", "buyer_id", "user_key")
# PostgreSQL rows held about a user: table -> the column naming them.
HELD_IN_POSTGRES = {
    "users": "id", "orders": "buyer_id", "sub_orders": "buyer_id", "order_items": "buyer_id",
    "payments": "buyer_id", "refunds": "buyer_id", "reviews": "buyer_id", "carts": "buyer_id",
    "cart_items": "buyer_id", "order_status_changes": "buyer_id", "shopper_events": "user_id",
}
SECRET_COLUMNS = {"users": ("password_hash",)}

ANONYMISE = (
    ("UPDATE users SET email = NULL, phone = NULL, full_name = NULL, external_ref = NULL, is_active = false,"
     " password_hash = '!erased' WHERE id = :user"),
    ("UPDATE orders SET shipping_address = jsonb_build_object('country', shipping_address->'country')"
     " WHERE buyer_id = :user"),
    "DELETE FROM refresh_tokens WHERE user_id = :user",
    "DELETE FROM cart_items WHERE buyer_id = :user",
    "DELETE FROM carts WHERE buyer_id = :user",
    "UPDATE shopper_events SET user_id = NULL, anonymous_id = NULL, context = '{}'::jsonb WHERE user_id = :user",
    # The change log keeps copies of the personal fields it captured.
    ("UPDATE outbox SET payload = payload - 'email' - 'phone' - 'full_name'"
     " WHERE aggregate_type = 'user' AND aggregate_id = CAST(:user AS text)"),
    ("UPDATE outbox SET payload = payload - 'shipping_address'"
     " WHERE aggregate_type = 'order' AND payload->>'buyer_id' = CAST(:user AS text)"),
    "UPDATE audit_log SET changes = '{}'::jsonb WHERE entity_type = 'user' AND entity_id = CAST(:user AS text)",
)


@dataclass
class ErasureReport:
    user_id: str
    tables: dict[str, int] = field(default_factory=dict)  # layer.table -> rows removed
    vacuumed_files: int = 0


def _platform(connection: Connection) -> None:
    # FORCEd row-level security applies to the owner too: act as the platform.
    connection.execute(text("SELECT set_config('app.scope', 'platform', true)"))


def _require_user(connection: Connection, user_id: str) -> None:
    if not connection.execute(text("SELECT 1 FROM users WHERE id = :user"), {"user": user_id}).first():
        raise NotFound(f"no user {user_id}", field="user")


def anonymise_in_postgres(user_id: str) -> None:
    with owner_engine().begin() as connection:
        _platform(connection)
        _require_user(connection, user_id)
        for statement in ANONYMISE:
            connection.execute(text(statement), {"user": user_id})


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


def _user_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{value!r} is not a user id (a UUID)", field="user") from None


def erase_user(spark: SparkSession, user_id: str) -> ErasureReport:
    user_id = _user_id(user_id)
    anonymise_in_postgres(user_id)
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


def export_user(spark: SparkSession, user_id: str, destination: Path) -> dict[str, int]:
    """Write everything held about the user under `destination` (one JSON file per source table);
    returns the row count per file."""
    user_id = _user_id(user_id)
    destination.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with owner_engine().begin() as connection:
        _platform(connection)
        _require_user(connection, user_id)
        for table, column in HELD_IN_POSTGRES.items():
            hidden = "".join(f" - '{secret}'" for secret in SECRET_COLUMNS.get(table, ()))
            rows = connection.execute(text(
                f"SELECT to_jsonb(t){hidden} FROM {table} AS t WHERE {column} = :user"), {"user": user_id}).scalars().all()
            counts[f"postgres.{table}"] = _write(destination / f"postgres.{table}.json", rows)
    for layer, name, uri, condition, _ in _user_tables(spark, user_id):
        rows = [row.asDict(recursive=True) for row in tables.read(spark, uri).where(condition).collect()]
        if rows:
            counts[f"lakehouse.{layer}.{name}"] = _write(destination / f"lakehouse.{layer}.{name}.json", rows)
    (destination / "manifest.json").write_text(json.dumps({"user_id": user_id, "files": counts}, indent=2))
    return counts


def _write(path: Path, rows: list) -> int:
    path.write_text(json.dumps(rows, indent=2, default=str))
    return len(rows)
