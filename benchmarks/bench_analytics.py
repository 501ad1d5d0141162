"""Analytics throughput: the warehouse load and the dbt build on a generated marketplace, with a
baseline measured in the same run.

- `warehouse_load_rows_per_s`: every contract table read from Delta (polars) and copied into
  PostgreSQL `analytics` (COPY, one transaction per table); baseline `plain_copy_rows_per_s`: COPY
  of the largest table's rows already held as CSV in memory (no Delta read, no conversion), the
  ceiling the load can approach.
- `dbt_build_seconds`: `dbt build` (every model, data test and unit test); `dbt_run_seconds`: the
  models alone, so the tests' share shows.

The generated marketplace (kept as a template database, benchmarks.common) is copied into a
scratch database and taken through bronze, silver and gold first (those steps are benchmarked in
bench_lakehouse), unless `--lakehouse DIR` names a lakehouse bench_lakehouse already built
(`--keep-lakehouse DIR`) from the same marketplace.

    python -m benchmarks.bench_analytics [--small] [--lakehouse DIR]     (default: the medium scale)
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from benchmarks.common import generated_marketplace_template, report, scratch_database

DATABASE = "marketlake_bench_analytics"


def _timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def plain_copy_rows_per_s(table) -> float:
    """COPY of the table's rows from an in-memory CSV into a scratch copy of it."""
    from orchestration.warehouse_load import NULL, extract, to_copy_frame
    from transactional.db import owner_engine

    frame = to_copy_frame(table, extract(table))
    csv = frame.write_csv(include_header=False, null_value=NULL, quote_style="non_numeric").encode()
    with owner_engine().begin() as connection:
        connection.execute(text(f"CREATE TEMP TABLE baseline (LIKE {table.qualified})"))
        driver = connection.connection.driver_connection
        started = time.perf_counter()
        with driver.cursor() as cursor, cursor.copy(
                f"COPY baseline ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv, NULL '{NULL}')") as copy:
            copy.write(io.BytesIO(csv).getvalue())
        seconds = time.perf_counter() - started
    return frame.height / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small scale instead of medium")
    parser.add_argument("--lakehouse", type=Path, help="a lakehouse already built from the same marketplace")
    args = parser.parse_args()
    scale = "small" if args.small else "medium"
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MARKETLAKE_LAKEHOUSE_URI"] = str(args.lakehouse or scratch)
        from orchestration.resources import dbt_cli
        from orchestration.warehouse_load import LOADED, load_all
        from pipelines import bronze, gold, silver
        from pipelines.engine import get_spark
        from pipelines.settings import lakehouse_settings

        lakehouse_settings.cache_clear()
        with scratch_database(DATABASE, template=generated_marketplace_template(scale)):
            lakehouse_seconds = None
            if args.lakehouse is None:
                spark = get_spark()
                lakehouse_seconds = _timed(lambda: (bronze.ingest(spark), silver.build_silver(spark),
                                                    gold.build_gold(spark)))

            started = time.perf_counter()
            reports = load_all()
            warehouse_seconds = time.perf_counter() - started
            rows = sum(report.rows for report in reports)
            largest = max(reports, key=lambda report: report.rows)
            baseline = plain_copy_rows_per_s(LOADED[largest.table])

            dbt = dbt_cli()
            run_seconds = _timed(lambda: dbt.cli(["run"], raise_on_error=True).wait())
            build_seconds = _timed(lambda: dbt.cli(["build"], raise_on_error=True).wait())

    loaded = rows / warehouse_seconds
    report("analytics" if scale == "medium" else "analytics_small", {
        "scale": f"{scale} generated marketplace",
        "lakehouse_seconds": round(lakehouse_seconds, 1) if lakehouse_seconds else "built by bench_lakehouse",
        "warehouse_rows": rows,
        "warehouse_seconds": round(warehouse_seconds, 2),
        "warehouse_load_rows_per_s": round(loaded),
        "per_table_rows_per_s": {r.table: round(r.rows_per_second) for r in reports if r.rows},
        "baseline_plain_copy_rows_per_s": round(baseline),
        "baseline_table": largest.table,
        "load_vs_plain_copy": round(loaded / baseline, 3),
        "dbt_build_seconds": round(build_seconds, 1),
        "dbt_run_seconds": round(run_seconds, 1),
        "tests_share_of_build": round(1 - run_seconds / build_seconds, 3),
    })


if __name__ == "__main__":
    main()
