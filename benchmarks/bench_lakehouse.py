"""Lakehouse throughput and freshness on a generated marketplace (medium by default), with
baselines measured in the same run.

The marketplace is written through the services once and kept as a template database
(benchmarks.common.generated_marketplace_template); each run works on a copy of it.

- `bronze_ingest`: outbox changes and shopper events from PostgreSQL into bronze Delta (exactly
  once, one commit per micro-batch) on embedded Sail, rows/s per feed; baselines: reading the same
  change feed alone (no lakehouse) as Python rows (`feed_read_rows_per_s`, `read_changes`) and as
  Arrow (`feed_read_arrow_rows_per_s`, `read_changes_arrow` with the bronze columns: what the
  ingest reads, its ceiling).
- `silver_merge_rows_per_s`: bronze changes turned into silver current state, history and clean
  events by guarded MERGE; first the full load, then an incremental batch (a price change of a
  tenth of the SKUs, through the capture trigger) into the existing tables. `gold_seconds`: every
  gold table recomputed behind its quality gates.
- `freshness_seconds`: a writer commits small batches of shopper events while `stream`
  micro-batches run every 0.5 s; p50/p95 of (commit in PostgreSQL -> visible in bronze).
- `transform_job`: the same job (bronze parquet -> silver transforms -> parquet, no Delta) on Sail
  and on JVM Spark in local mode, as a ratio (JVM Spark in its own process: a process holds one
  kind of session).

    python -m benchmarks.bench_lakehouse [--small] [--keep-lakehouse DIR]

`--keep-lakehouse` leaves the lakehouse built here in DIR, for bench_analytics --lakehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from benchmarks.common import generated_marketplace_template, report, scratch_database

DATABASE = "marketlake_bench_lakehouse"


def reprice_a_tenth_of_the_skus() -> int:
    """A real incremental change: SKU prices updated in PostgreSQL, captured by the trigger."""
    from transactional.db import owner_engine

    with owner_engine().begin() as connection:
        connection.execute(text("SELECT set_config('app.scope', 'platform', true)"))
        return connection.execute(text(
            "UPDATE skus SET price = round(price * 1.05, 2) WHERE id IN (SELECT id FROM skus TABLESAMPLE SYSTEM (10))"
        )).rowcount


def warm_cache() -> None:
    """Read both feeds' tables once, so the baseline and the ingest both find them in memory (a
    template copy starts cold)."""
    from transactional.db import owner_engine

    with owner_engine().connect() as connection:
        connection.execute(text("SELECT sum(length(payload::text)) FROM outbox"))
        connection.execute(text("SELECT sum(length(context::text)) FROM shopper_events"))


def feed_read_rows_per_s(batch_size: int) -> float:
    from transactional.db import owner_engine
    from transactional.services.change_feed import FeedPosition, read_changes

    rows, started = 0, time.perf_counter()
    for feed in ("outbox", "shopper_events"):
        position = FeedPosition()
        with owner_engine().connect() as connection:
            while batch := read_changes(connection, feed, position, batch_size):
                if not batch.rows:
                    break
                rows += len(batch.rows)
                position = batch.position
    return rows / (time.perf_counter() - started)


def feed_read_arrow_rows_per_s(batch_size: int) -> float:
    from pipelines import bronze
    from transactional.db import owner_engine
    from transactional.services.change_feed import FeedPosition, arrow_connection

    rows, started = 0, time.perf_counter()
    with arrow_connection(owner_engine()) as connection:
        for feed in ("outbox", "shopper_events"):
            position = FeedPosition()
            while (batch := bronze.extract_changes(connection, feed, position, batch_size)).rows.num_rows:
                rows += batch.rows.num_rows
                position = batch.position
    return rows / (time.perf_counter() - started)


def freshness(spark, seconds: float) -> dict:
    """Commit small batches while streaming; lags from the ingest reports."""
    from pipelines import bronze
    from transactional.db import owner_engine

    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            with owner_engine().begin() as connection:
                connection.execute(text(
                    "INSERT INTO shopper_events (event_id, event_type, anonymous_id, session_id, occurred_at, context)"
                    " SELECT gen_random_uuid(), 'view', 'd', 's', now(), '{}' FROM generate_series(1, 50)"))
            time.sleep(0.2)

    thread = threading.Thread(target=writer)
    thread.start()
    lags: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for feed_report in bronze.ingest(spark, ["shopper_events"]):
            lags.extend(feed_report.lags)
        time.sleep(0.5)
    stop.set()
    thread.join()
    p50, p95 = np.percentile(lags, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "rows": len(lags),
            "stream_interval_s": 0.5}


def transform_job(spark, bronze_root: Path, out: Path) -> dict:
    """bronze parquet -> silver products current state, SCD2 history and clean events -> parquet."""
    from pipelines import silver

    started = time.perf_counter()
    outbox = spark.read.parquet(str(bronze_root / "outbox"))
    events = spark.read.parquet(str(bronze_root / "shopper_events"))
    products = silver.ENTITY["products"]
    silver.transform_current_state(outbox, products).write.mode("overwrite").parquet(str(out / "products"))
    silver.transform_history(silver.transform_versions(outbox, products), products.keys) \
        .write.mode("overwrite").parquet(str(out / "product_history"))
    silver.transform_clean_events(events).write.mode("overwrite").parquet(str(out / "events"))
    rows = outbox.count() + events.count()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1)}


def jvm_transform_job(bronze_root: Path, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    completed = subprocess.run([sys.executable, "-m", "benchmarks.bench_lakehouse", "--jvm-job", str(bronze_root),
                                str(out)], env=env, capture_output=True, text=True, timeout=3600, check=False)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr else "failed"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _timed(step):
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small generated scale instead of medium")
    parser.add_argument("--keep-lakehouse", type=Path, help="leave the lakehouse built here in this directory")
    parser.add_argument("--jvm-job", nargs=2, metavar=("BRONZE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jvm_job:
        from pipelines.engine import local_jvm_spark

        print(json.dumps(transform_job(local_jvm_spark(), Path(args.jvm_job[0]), Path(args.jvm_job[1]))))
        return

    scale = "small" if args.small else "medium"
    batch_size = 20_000
    workdir = Path(tempfile.mkdtemp(prefix="bench-lakehouse-"))
    lake = args.keep_lakehouse or workdir / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    os.environ["MARKETLAKE_LAKEHOUSE_URI"] = str(lake)
    from pipelines import bronze, gold, silver
    from pipelines.engine import get_spark
    from pipelines.settings import lakehouse_settings

    lakehouse_settings.cache_clear()
    try:
        with scratch_database(DATABASE, template=generated_marketplace_template(scale)):
            warm_cache()
            read_rate = feed_read_rows_per_s(batch_size)
            arrow_read_rate = feed_read_arrow_rows_per_s(batch_size)
            spark = get_spark()
            ingested, _ = _timed(lambda: bronze.ingest(spark, batch_size=batch_size))
            full, full_seconds = _timed(lambda: silver.build_silver(spark))
            published, gold_seconds = _timed(lambda: gold.build_gold(spark))
            repriced = reprice_a_tenth_of_the_skus()
            bronze.ingest(spark, batch_size=batch_size)
            incremental, incremental_seconds = _timed(lambda: silver.build_silver(spark))

            fresh = freshness(spark, 10 if args.small else 30)

            bronze_root = lake / "bronze"
            on_sail = transform_job(spark, bronze_root, workdir / "sail-out")
            on_jvm = jvm_transform_job(bronze_root, workdir / "jvm-out")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    feeds = {r.feed: {"rows": r.rows, "seconds": round(r.seconds, 1), "rows_per_s": round(r.rows_per_second, 1)}
             for r in ingested}
    ingest_rate = sum(r.rows for r in ingested) / sum(r.seconds for r in ingested)
    report("lakehouse" if scale == "medium" else "lakehouse_small", {
        "scale": f"{scale} generated marketplace", "engine": "sail-embedded (pysail 0.7.2), Delta",
        "batch_size": batch_size,
        "bronze_ingest": {**feeds, "rows_per_s": round(ingest_rate, 1)},
        "feed_read_rows_per_s": round(read_rate, 1),
        "bronze_ingest_vs_feed_read": round(ingest_rate / read_rate, 3),
        "feed_read_arrow_rows_per_s": round(arrow_read_rate, 1),
        "bronze_ingest_vs_feed_read_arrow": round(ingest_rate / arrow_read_rate, 3),
        "silver_merge_rows_per_s": {
            "full_load": round((full.changes + full.events) / full_seconds, 1),
            "full_load_rows": full.changes + full.events, "full_load_seconds": round(full_seconds, 1),
            "incremental": round(incremental.changes / incremental_seconds, 1),
            "incremental_rows": incremental.changes, "skus_repriced": repriced},
        "gold_seconds": round(gold_seconds, 1), "gold_published": published.published,
        "gold_blocked": published.blocked,
        "freshness_seconds": fresh,
        "transform_job": {"sail": on_sail, "jvm_spark_local": on_jvm,
                          "sail_vs_jvm_speedup": round(on_sail["rows_per_s"] / on_jvm["rows_per_s"], 2)
                          if "rows_per_s" in on_jvm else None},
    })


if __name__ == "__main__":
    main()
