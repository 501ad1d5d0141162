"""The same transform code gives the same answers on Sail and on JVM Spark (local mode)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

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
    outcomes = {r["query"]: r["outcome"] for r in out["gold_search_queries"]}
    assert outcomes == {"lamp": "purchased", "chair": "abandoned"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="needs a JVM")
def test_the_same_transforms_give_the_same_results_on_jvm_spark(spark):
    on_sail = portable_transforms.results(spark)
    env = {key: value for key, value in os.environ.items() if key not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    completed = subprocess.run([sys.executable, "-m", "tests.lakehouse.portable_transforms"], env=env,
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    on_jvm = json.loads(completed.stdout)
    assert on_jvm.keys() == on_sail.keys()
    for name in on_sail:
        assert on_jvm[name] == on_sail[name], name
