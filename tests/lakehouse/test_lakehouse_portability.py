"""The same transform code gives the same answers on Sail and on JVM Spark (local mode)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from importlib.metadata import version

import pytest
from deltalake import DeltaTable

from pipelines.engine import classic_builder
from pipelines.settings import LakehouseSettings
from tests.lakehouse import portable_transforms


def test_transforms_answer_the_business_questions_on_sail(spark):
    out = portable_transforms.results(spark)
    [current] = [r for r in out["silver_products"] if r["product_id"] == "p-a"]
    assert current["title"] == "second"  # the stale change arrived last but is older
    history = sorted((r for r in out["silver_product_history"] if r["product_id"] == "p-a"),
                     key=lambda r: r["valid_from"])
    assert [r["title"] for r in history] == ["late and stale", "first", "second"]
    assert [r["is_current"] for r in history] == [False, False, True]
    assert {r["session_id"] for r in out["silver_events"]} == {"s1", "s2"}  # the crawler is gone
    searches = {r["query"]: r for r in out["gold_search_queries"]}
    assert {query: r["outcome"] for query, r in searches.items()} == {
        "lamp": "purchased", "chair": "abandoned", "sofa": "abandoned"}
    found = {query: (r["result_count"], r["shown_products"]) for query, r in searches.items()}
    assert found == {"lamp": (12, ["p-a", "p-b"]), "chair": (0, []), "sofa": (None, [])}


def test_the_delta_round_trip_keeps_the_newer_change_on_sail(spark, tmp_path):
    assert portable_transforms.delta_round_trip(spark, str(tmp_path)) == [
        {"product_id": "p-a", "title": "first", "version": 2}, {"product_id": "p-b", "title": "other", "version": 1}]


needs_jvm = pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="needs a JVM")
# Delta's jars for classic Spark come from Maven, which this build machine cannot reach; given
# pre-staged jars (comma-separated paths), the Delta round trip runs on classic Spark too.
DELTA_JARS = os.environ.get("MARKETLAKE_TEST_DELTA_JARS")


def _jvm(*args: str, **settings: str):
    """`python -m tests.lakehouse.portable_transforms ARGS` in a JVM-Spark process (a process
    holds one kind of session), with MARKETLAKE_* `settings`; returns its JSON output."""
    env = {key: value for key, value in os.environ.items() if key not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env |= {f"MARKETLAKE_{key.upper()}": value for key, value in settings.items()}
    completed = subprocess.run([sys.executable, "-m", "tests.lakehouse.portable_transforms", *args], env=env,
                               capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def _same(on_jvm: dict, on_sail: dict) -> None:
    assert on_jvm.keys() == on_sail.keys()
    for name, rows in on_sail.items():
        assert on_jvm[name] == rows, name


@pytest.mark.slow
@needs_jvm
def test_the_same_transforms_give_the_same_results_on_jvm_spark(spark):
    _same(_jvm(), portable_transforms.results(spark))


def test_classic_spark_gets_delta_from_maven_or_from_prestaged_jars():
    fetched = classic_builder(LakehouseSettings(spark_master="local[2]"))._options  # no public getter
    assert fetched["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert fetched["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    spark_minor = ".".join(version("pyspark").split(".")[:2])
    assert fetched["spark.jars.packages"] == f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"

    jars = "/opt/jars/delta-spark_2.13.jar,/opt/jars/delta-storage.jar"
    staged = classic_builder(LakehouseSettings(spark_master="yarn", spark_jars=jars,
                                               spark_conf={"spark.sql.shuffle.partitions": "4"}))._options
    assert staged["spark.jars"] == jars and "spark.jars.packages" not in staged
    assert staged["spark.master"] == "yarn" and staged["spark.sql.shuffle.partitions"] == "4"
    assert staged["spark.sql.extensions"] == fetched["spark.sql.extensions"]


@pytest.mark.slow
@needs_jvm
@pytest.mark.skipif(not DELTA_JARS, reason="Delta jars for classic Spark come from Maven, unreachable here; "
                                           "set MARKETLAKE_TEST_DELTA_JARS to pre-staged ones")
def test_classic_spark_writes_the_same_delta_tables_as_sail(spark, tmp_path):
    on_sail = portable_transforms.delta_round_trip(spark, str(tmp_path / "sail"))
    on_classic = _jvm("--delta", str(tmp_path / "classic"), spark_master="local[2]", spark_jars=DELTA_JARS)
    assert on_classic == on_sail
    assert DeltaTable(str(tmp_path / "classic" / "silver" / "products")).to_pyarrow_table().num_rows == 2
