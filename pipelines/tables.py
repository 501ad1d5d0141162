"""Delta tables of the lakehouse: where each lives, reading (with time travel), appending with
commit metadata, idempotent upserts, and maintenance.

Reads and writes go through Spark so they run on every engine. Commit history, compaction and
vacuum use the `deltalake` library on the table files themselves: Sail 0.7 has no OPTIMIZE or
VACUUM statement, and the Delta log is the same whichever engine wrote it. Tables under an
object-store root are listed with `obstore`, configured from the same storage options.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from deltalake import DeltaTable, Field
from obstore.store import ObjectStore, from_url
from pyspark.sql import DataFrame, SparkSession

from pipelines.settings import lakehouse_settings

LAYERS = ("bronze", "silver", "gold", "quality", "system")
RECENT_COMMITS = 20


def table_uri(layer: str, name: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; one of {', '.join(LAYERS)}")
    return f"{lakehouse_settings().root}/{layer}/{name}"


def parse_table_name(qualified: str) -> tuple[str, str]:
    """`silver.products` -> ("silver", "products")."""
    layer, _, name = qualified.partition(".")
    if not name:
        raise ValueError(f"name a table as layer.table (e.g. silver.products), got {qualified!r}")
    table_uri(layer, name)
    return layer, name


def _storage() -> dict[str, str] | None:
    return lakehouse_settings().lakehouse_storage_options or None


def exists(uri: str) -> bool:
    return DeltaTable.is_deltatable(uri, storage_options=_storage())


def delta_table(uri: str) -> DeltaTable:
    return DeltaTable(uri, storage_options=_storage())


def read(spark: SparkSession, uri: str, *, version: int | None = None,
         timestamp: datetime | str | None = None) -> DataFrame:
    """The table now, or as of a version or a timestamp (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    elif timestamp is not None:
        moment = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
        reader = reader.option("timestampAsOf", moment)
    return reader.load(uri)


def read_or_empty(spark: SparkSession, uri: str, schema: str) -> DataFrame:
    return read(spark, uri) if exists(uri) else spark.createDataFrame([], schema)


def append(df: DataFrame, uri: str, *, partition_by: Sequence[str] = (), metadata: dict | None = None) -> None:
    """One atomic Delta commit; `metadata` is stored in the commit itself (commitInfo.userMetadata)."""
    writer = df.write.format("delta").mode("append")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if metadata is not None:
        writer = writer.option("userMetadata", json.dumps(metadata, sort_keys=True))
    writer.save(uri)


def overwrite(df: DataFrame, uri: str, *, partition_by: Sequence[str] = ()) -> None:
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(uri)


def _commits_newest_first(table: DeltaTable) -> Iterator[dict]:
    # The newest commits nearly always hold what is looked for; read the whole log only if not.
    yield from table.history(limit=RECENT_COMMITS)
    yield from table.history()[RECENT_COMMITS:]


def latest_commit_metadata(uri: str, key: str) -> dict | None:
    """The newest commit metadata (written by `append`) that holds `key`."""
    if not exists(uri):
        return None
    for commit in _commits_newest_first(delta_table(uri)):
        raw = commit.get("userMetadata")
        if not raw:
            continue
        try:
            metadata = json.loads(raw)
        except ValueError:
            continue
        if isinstance(metadata, dict) and key in metadata:
            return metadata
    return None


def upsert(spark: SparkSession, source: DataFrame, uri: str, *, keys: Sequence[str],
           newer_than: str | None = None, partition_by: Sequence[str] = ()) -> None:
    """MERGE `source` into the table on `keys`: insert new keys, update a key only where
    `newer_than` (a SQL condition over s. and t.) holds, so a replayed or late change never
    overwrites a newer version and running the same batch twice changes nothing.

    Sail 0.7 runs MERGE INTO on Delta (as does delta-spark), so one statement serves every engine.
    `source` must hold one row per key.
    """
    if not exists(uri):
        overwrite(source, uri, partition_by=partition_by)
        return
    add_missing_columns(uri, source)
    view = f"upsert_source_{abs(hash(uri))}"
    source.createOrReplaceTempView(view)
    on = " AND ".join(f"t.`{key}` <=> s.`{key}`" for key in keys)
    matched = f"WHEN MATCHED AND ({newer_than}) THEN UPDATE SET *" if newer_than else ""
    try:
        spark.sql(f"MERGE INTO delta.`{uri}` AS t USING {view} AS s ON {on} {matched} WHEN NOT MATCHED THEN INSERT *")
    finally:
        spark.catalog.dropTempView(view)


def add_missing_columns(uri: str, source: DataFrame) -> list[str]:
    """Add the source's columns the table lacks (null in existing rows): tables only grow, and a
    MERGE with `UPDATE SET *` would otherwise drop a new column silently (Sail 0.7 does)."""
    table = delta_table(uri)
    present = set(table.schema().to_arrow().names)
    missing = [column for column in source.schema.fields if column.name not in present]
    if missing:
        # A Spark StructField's JSON is the Delta schema's own field format.
        table.alter.add_columns([Field.from_json(json.dumps({**column.jsonValue(), "nullable": True}))
                                 for column in missing])
    return [column.name for column in missing]


def delete_where(spark: SparkSession, uri: str, condition: str) -> None:
    spark.sql(f"DELETE FROM delta.`{uri}` WHERE {condition}")


def compact(uri: str) -> dict:
    """Rewrite small files into larger ones (a new table version; old files stay until vacuum)."""
    return delta_table(uri).optimize.compact()


def vacuum(uri: str, retention: timedelta) -> list[str]:
    """Delete files no version newer than `retention` needs: time travel past it ends there."""
    return delta_table(uri).vacuum(
        retention_hours=int(retention.total_seconds() // 3600), dry_run=False, enforce_retention_duration=False)


def all_tables() -> list[tuple[str, str, str]]:
    """(layer, name, uri) of every Delta table under the lakehouse root (a local path or an object
    store)."""
    return [(layer, name, table_uri(layer, name)) for layer in LAYERS for name in _folders(layer)
            if exists(table_uri(layer, name))]


def _folders(layer: str) -> list[str]:
    settings = lakehouse_settings()
    if settings.is_local:
        directory = settings.local_root() / layer
        return sorted(child.name for child in directory.iterdir() if child.is_dir()) if directory.is_dir() else []
    listing = _object_store().list_with_delimiter(layer)
    return sorted(prefix.rsplit("/", 1)[-1] for prefix in listing["common_prefixes"])


# deltalake's storage options are object_store's own keys, except its commit-coordination ones,
# which listing does not need; obstore takes the HTTP client's keys separately.
_DELTALAKE_ONLY_OPTIONS = {"aws_s3_allow_unsafe_rename", "aws_s3_locking_provider", "delta_dynamo_table_name"}
_CLIENT_OPTIONS = {"allow_http", "allow_invalid_certificates", "connect_timeout", "timeout", "proxy_url"}


def _object_store() -> ObjectStore:
    config, client = {}, {}
    for key, value in lakehouse_settings().lakehouse_storage_options.items():
        name = key.lower()
        bare = re.sub(r"^(aws|azure|google)_", "", name)
        if bare in _CLIENT_OPTIONS:
            client[bare] = value
        elif name not in _DELTALAKE_ONLY_OPTIONS:
            config[name] = value
    return from_url(lakehouse_settings().root, config=config or None, client_options=client or None)
