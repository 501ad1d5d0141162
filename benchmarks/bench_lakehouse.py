"""Lakehouse throughput and freshness, with baselines measured in the same run.

- `bronze_ingest_rows_per_s`: outbox + shopper events from PostgreSQL into bronze Delta (exactly
  once, one commit per micro-batch) on embedded Sail; baseline `feed_read_rows_per_s`: reading the
  same change feed alone (no lakehouse), the ceiling the ingest can approach.
- `silver_upsert_rows_per_s`: bronze changes turned into silver current state, history and clean
  events by guarded MERGE; first a full load, then an incremental batch into existing tables.
- `freshness_seconds`: a writer commits small batches to PostgreSQL while `stream` micro-batches
  run; p50/p95 of (commit in PostgreSQL -> visible in bronze).
- `transform_job`: the same job (bronze parquet -> silver transforms -> parquet, no Delta) on Sail
  and on JVM Spark in local mode, as a ratio (JVM Spark in its own process: a process holds one
  kind of session).

    python -m benchmarks.bench_lakehouse [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from benchmarks.common import report, scratch_database

DATABASE = "marketlake_bench_lakehouse"
EVENT_TYPES = ["impression", "view", "click", "search", "add_to_cart", "purchase"]


def seed(outbox_rows: int, events: int, products: int = 2000) -> None:
    """Product changes in the outbox (as the capture trigger writes them) and shopper events."""
    from transactional.db import owner_engine

    with owner_engine().begin() as connection:
        connection.execute(text(
            "INSERT INTO outbox (event_type, schema_version, tenant_id, aggregate_type, aggregate_id, payload)"
            " SELECT 'product.updated', 1, t.tenant, 'product', p.id::text, jsonb_build_object("
            "   'id', p.id, 'tenant_id', t.tenant, 'title', 'Product ' || g, 'status', 'active', 'version', g,"
            "   'min_price', (g % 500) + 0.99, 'created_at', now(), 'updated_at', now())"
            " FROM generate_series(1, CAST(:rows AS int)) g"
            " CROSS JOIN LATERAL (SELECT md5('p' || (g % CAST(:products AS int)))::uuid AS id) p"
            " CROSS JOIN LATERAL (SELECT md5('t' || (g % 20))::uuid AS tenant) t"
        ), {"rows": outbox_rows, "products": products})
        connection.execute(text(
            "INSERT INTO shopper_events (event_id, event_type, anonymous_id, session_id, occurred_at, product_id,"
            " query, context)"
            " SELECT gen_random_uuid(), (CAST(:types AS text[]))[1 + g % 6], 'device-' || (g % 5000),"
            "  'session-' || (g / 40), now() - make_interval(secs => g % 86400),"
            "  CASE WHEN g % 6 <> 3 THEN md5('p' || (g % CAST(:products AS int)))::uuid END,"
            "  CASE WHEN g % 6 = 3 THEN 'query ' || (g % 50) END, '{\"device\": \"mobile\"}'::jsonb"
            " FROM generate_series(1, CAST(:events AS int)) g"
        ), {"events": events, "types": EVENT_TYPES, "products": products})


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
                                str(out)], env=env, capture_output=True, text=True, timeout=1800, check=False)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr else "failed"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="a quick run on a small data set")
    parser.add_argument("--jvm-job", nargs=2, metavar=("BRONZE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jvm_job:
        from pipelines.engine import local_jvm_spark

        print(json.dumps(transform_job(local_jvm_spark(), Path(args.jvm_job[0]), Path(args.jvm_job[1]))))
        return

    outbox_rows, events = (20_000, 20_000) if args.small else (200_000, 200_000)
    batch_size = 5_000 if args.small else 20_000
    workdir = Path(tempfile.mkdtemp(prefix="bench-lakehouse-"))
    os.environ["MARKETLAKE_LAKEHOUSE_URI"] = str(workdir / "lake")
    from pipelines import bronze, silver
    from pipelines.engine import get_spark
    from pipelines.settings import lakehouse_settings

    lakehouse_settings.cache_clear()
    random.seed(7)
    try:
        with scratch_database(DATABASE):
            seed(outbox_rows, events)
            read_rate = feed_read_rows_per_s(batch_size)
            spark = get_spark()
            started = time.perf_counter()
            ingested = bronze.ingest(spark, batch_size=batch_size)
            ingest_seconds = time.perf_counter() - started
            ingest_rate = sum(r.rows for r in ingested) / ingest_seconds

            started = time.perf_counter()
            full = silver.build_silver(spark)
            full_rate = (full.changes + full.events) / (time.perf_counter() - started)
            seed(outbox_rows // 10, 0)
            bronze.ingest(spark, batch_size=batch_size)
            started = time.perf_counter()
            incremental = silver.build_silver(spark)
            incremental_rate = incremental.changes / (time.perf_counter() - started)

            fresh = freshness(spark, 10 if args.small else 30)

            bronze_root = workdir / "lake" / "bronze"
            on_sail = transform_job(spark, bronze_root, workdir / "sail-out")
            on_jvm = jvm_transform_job(bronze_root, workdir / "jvm-out")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report("lakehouse", {
        "size": "small" if args.small else "full",
        "engine": "sail-embedded (pysail 0.7.2), Delta",
        "rows": {"outbox": outbox_rows, "shopper_events": events, "batch_size": batch_size},
        "bronze_ingest_rows_per_s": round(ingest_rate, 1),
        "feed_read_rows_per_s": round(read_rate, 1),
        "bronze_ingest_vs_feed_read": round(ingest_rate / read_rate, 3),
        "silver_upsert_rows_per_s": {"full_load": round(full_rate, 1), "incremental": round(incremental_rate, 1)},
        "freshness_seconds": fresh,
        "transform_job": {"sail": on_sail, "jvm_spark_local": on_jvm,
                          "sail_vs_jvm_speedup": round(on_sail["rows_per_s"] / on_jvm["rows_per_s"], 2)
                          if "rows_per_s" in on_jvm else None},
    })


if __name__ == "__main__":
    main()
