"""The gold feature tables (pipelines.features), one dated snapshot row per entity and build, as
Feast reads them: Parquet files exported from the Delta tables (`export_feature_tables`). Feast's
DuckDB offline store would read Delta only through DuckDB's delta extension, downloaded at run
time, and its file store reads a table's directory as plain Parquet, files the Delta log removed
included. The export directory (MARKETLAKE_FEAST_OFFLINE_DIR) is read when the definitions are
imported, i.e. when they are applied."""

from feast import FileSource
from feast.data_format import ParquetFormat

from feature_repo.store import FeastSettings

TIMESTAMP = "feature_timestamp"


def _snapshots(table: str, **field_mapping: str) -> FileSource:
    return FileSource(
        name=table, path=f"{FeastSettings().offline_path()}/{table}.parquet", file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP, field_mapping=field_mapping or None,
        description=f"gold.{table}: one row per entity and feature_date, as of feature_timestamp")


user_features_source = _snapshots("user_features")
# An item's seller is a feature named seller_id: `tenant_id` is the seller entity's join key, and a
# training set joining both would otherwise hold two tenant_id columns.
item_features_source = _snapshots("item_features", tenant_id="seller_id")
seller_features_source = _snapshots("seller_features")
