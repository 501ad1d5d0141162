"""The gold feature tables (pipelines.features), one dated snapshot row per entity and build, as
Feast reads them: Parquet files exported from the Delta tables (`export_feature_tables`), because
Feast's file offline store reads a directory as plain Parquet and would also read the files a Delta
log has removed."""

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
