"""Bronze: every committed change lands exactly once, even across crashes and out-of-order commits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from sqlalchemy import text

from pipelines import bronze
from tests.lakehouse import sources
from transactional.db import owner_engine
from transactional.errors import Conflict


def _bronze_ids(root: Path, table: str) -> Counter:
    """Read back with the `deltalake` package: any Delta reader sees the tables."""
    path = root / "bronze" / table
    if not (path / "_delta_log").is_dir():
        return Counter()
    return Counter(DeltaTable(str(path)).to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist())


def test_ingest_lands_every_change_once_and_a_rerun_adds_nothing(lakehouse, spark):
    store = sources.shop(products=2)
    sources.order(sources.shopper(), store)
    sources.events([{"event_type": "view", "session_id": "s1", "product_id": store.product_ids[0]}] * 1
                   + [{"event_type": "search", "session_id": "s1", "query": "mug"}])

    first = bronze.ingest(spark, batch_size=7)
    again = bronze.ingest(spark, batch_size=7)

    assert _bronze_ids(lakehouse, "outbox") == Counter(sources.outbox_event_ids())
    assert _bronze_ids(lakehouse, "shopper_events") == Counter(sources.shopper_event_ids())
    assert first[0].batches > 1  # several micro-batches, one Delta commit each
    assert [report.rows for report in again] == [0, 0]


def test_bronze_keeps_source_metadata_and_partitions_by_date_and_event_type(lakehouse, spark):
    store = sources.shop(products=1)
    bronze.ingest(spark)
    table = DeltaTable(str(lakehouse / "bronze" / "outbox"))
    assert table.metadata().partition_columns == ["event_date", "event_type"]
    rows = table.to_pyarrow_table().to_pylist()
    product = next(row for row in rows if row["event_type"] == "product.created")
    assert product["aggregate_id"] == str(store.product_ids[0])
    assert product["tenant_id"] == str(store.tenant_id)
    assert product["txid"] > 0 and product["feed_seq"] > 0 and product["ingested_at"] is not None


def test_rows_committed_out_of_id_order_are_not_skipped(lakehouse, spark):
    insert = text("INSERT INTO outbox (event_type, schema_version, aggregate_type, aggregate_id, payload)"
                  " VALUES (:type, 1, 'test', '1', '{}') RETURNING event_id")
    engine = owner_engine()
    with engine.connect() as early, engine.connect() as late:
        early.begin()
        early_id = str(early.execute(insert, {"type": "test.early"}).scalar())
        late.begin()
        late_id = str(late.execute(insert, {"type": "test.late"}).scalar())
        late.commit()  # the higher id commits first

        bronze.ingest(spark, ["outbox"])
        assert _bronze_ids(lakehouse, "outbox") == Counter()  # waits for the older transaction

        early.commit()
    bronze.ingest(spark, ["outbox"])
    assert _bronze_ids(lakehouse, "outbox") == Counter({early_id: 1, late_id: 1})


def test_no_raw_email_phone_or_street_reaches_the_lakehouse_files(lakehouse, spark):
    email, phone = "private.person@mail.example.com", "+33 6 99 88 77 66"
    buyer = sources.shopper(email=email, phone=phone)
    sources.order(buyer, sources.shop(products=1))
    bronze.ingest(spark)
    contents = "".join(json.dumps(pq.read_table(path).to_pylist(), default=str)
                       for path in lakehouse.rglob("*.parquet"))
    for secret in (email, phone, "Shopper Number", "Secret Street", "Private Person"):
        assert secret not in contents
    assert "Lyon" in contents  # coarse location stays for analytics


def test_only_one_ingest_per_feed_runs_at_a_time(lakehouse, spark):
    sources.raw_outbox(10)
    with bronze.exclusive_ingest("outbox"), pytest.raises(Conflict):
        bronze.ingest(spark, ["outbox"])
    assert [report.rows for report in bronze.ingest(spark, ["outbox"])] == [10]


def _ingest_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestration.cli", "lakehouse", "ingest", *args]


def _commits(root: Path) -> int:
    log = root / "bronze" / "outbox" / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


@pytest.mark.slow
def test_a_killed_ingest_rerun_neither_loses_nor_duplicates_a_row(lakehouse):
    sources.raw_outbox(4000, per_transaction=37)
    env = {**os.environ, "MARKETLAKE_LAKEHOUSE_URI": str(lakehouse)}
    command = _ingest_command(lakehouse, "--feed", "outbox", "--batch-size", "97")

    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _commits(lakehouse) < 4 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    written_before_kill = sum(_bronze_ids(lakehouse, "outbox").values())
    assert 0 < written_before_kill < 4000  # killed mid-stream, between or inside batches

    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)

    assert _bronze_ids(lakehouse, "outbox") == Counter(sources.outbox_event_ids())
