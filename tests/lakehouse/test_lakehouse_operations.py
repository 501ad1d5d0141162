"""Time travel, maintenance and the continuous stream, through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from orchestration.cli import app
from pipelines import bronze, silver, tables
from tests.lakehouse import sources

runner = CliRunner()


def _cli(*args: str) -> dict | list:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_any_table_reads_as_of_a_version_or_a_timestamp(lakehouse, spark):
    store = sources.shop(products=1)
    bronze.ingest(spark)
    silver.build_silver(spark)
    version_before = DeltaTable(silver.silver_uri("products")).version()
    time.sleep(1.1)
    moment = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    sources.retitle(store.product_ids[0], "Renamed")
    bronze.ingest(spark)
    silver.build_silver(spark)

    now = _cli("lakehouse", "show", "silver.products")
    then = _cli("lakehouse", "show", "silver.products", "--as-of", str(version_before))
    at_time = _cli("lakehouse", "show", "silver.products", "--as-of", moment)
    assert [row["title"] for row in now["rows"]] == ["Renamed"]
    assert then["rows"][0]["title"] == at_time["rows"][0]["title"] != "Renamed"
    versions = _cli("lakehouse", "history", "silver.products")
    assert versions[0]["version"] > version_before


def test_show_names_a_bad_table_or_as_of(lakehouse, spark):
    assert runner.invoke(app, ["lakehouse", "show", "products"]).exit_code == 2
    assert runner.invoke(app, ["lakehouse", "show", "silver.nothing"]).exit_code == 2


def test_maintenance_compacts_and_vacuums_within_the_retention(lakehouse, spark):
    sources.raw_outbox(300, per_transaction=300)
    bronze.ingest(spark, ["outbox"], batch_size=50)  # six small commits
    before = DeltaTable(bronze.bronze_uri("outbox"))
    rows = before.to_pyarrow_table().num_rows

    kept = _cli("lakehouse", "maintain", "--retention-hours", "24")
    outbox = next(entry for entry in kept if entry["table"] == "bronze.outbox")
    assert outbox["files_compacted"] > 1 and outbox["files_vacuumed"] == 0  # history kept: time travel works
    assert tables.read(spark, bronze.bronze_uri("outbox"), version=0).count() == 50

    dropped = _cli("lakehouse", "maintain", "--retention-hours", "0")
    outbox = next(entry for entry in dropped if entry["table"] == "bronze.outbox")
    assert outbox["files_vacuumed"] > 0
    assert DeltaTable(bronze.bronze_uri("outbox")).to_pyarrow_table().num_rows == rows


@pytest.mark.slow
def test_stream_ingests_continuously_and_reports_freshness(lakehouse):
    stream = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "lakehouse", "stream", "--interval", "0.5",
                               "--duration", "12"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(5)
    sources.raw_outbox(20)
    sources.events([{"event_type": "search", "session_id": "s", "query": "tea"}])
    output, _ = stream.communicate(timeout=120)
    summary = {feed["feed"]: feed for feed in json.loads(output)}
    assert summary["outbox"]["rows"] == 20 and summary["shopper_events"]["rows"] == 1
    assert summary["outbox"]["freshness_seconds"]["p95"] is not None
