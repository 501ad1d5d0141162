"""Warehouse: each lakehouse table the marts need, copied into PostgreSQL `analytics` (see
orchestration/warehouse_load.py). Dated tables are daily partitions, so a backfill reloads
exactly the days asked for; the others are reloaded whole."""

from datetime import date

import dagster as dg

from orchestration import warehouse_load
from orchestration.lakehouse import gold_key, silver_key
from orchestration.resources import DAILY, RETRY, PlatformDatabase

GROUP = "warehouse"


def warehouse_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", table])


def _days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    return window.start.date(), date.fromordinal(window.end.date().toordinal() - 1)


def _load_asset(table: warehouse_load.LoadedTable) -> dg.AssetsDefinition:
    upstream = silver_key(table.name) if table.layer == "silver" else gold_key(table.name)
    partitioned = table.dated_by is not None

    @dg.asset(
        key=warehouse_key(table.name), group_name=GROUP, deps=[upstream], kinds={"postgres"}, retry_policy=RETRY,
        partitions_def=DAILY if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        description=f"{table.layer}.{table.name} in PostgreSQL as {table.qualified}"
                    + (f", loaded per day of {table.dated_by}" if partitioned else ", loaded whole"),
    )
    def load(context: dg.AssetExecutionContext, database: PlatformDatabase) -> dg.MaterializeResult:
        report = warehouse_load.load(table, _days(context) if partitioned else None, engine=database.engine())
        return dg.MaterializeResult(metadata={
            "rows": report.rows, "seconds": round(report.seconds, 3),
            "rows_per_second": round(report.rows_per_second, 1), "table": table.qualified,
        })

    return load


defs = dg.Definitions(assets=[_load_asset(table) for table in warehouse_load.LOADED_TABLES])
