"""Each kind of expectation in a suite catches what it is for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipelines import quality

ORDERS = "order_id STRING, buyer_id STRING, status STRING, grand_total DECIMAL(14,2), _changed_at TIMESTAMP"


def _orders(spark, rows):
    return spark.createDataFrame([(*row[:3], Decimal(row[3]), row[4]) for row in rows], ORDERS)


def _failed(result) -> set[str]:
    return {failure.split("(")[0] for failure in result.failures}


def test_keys_ranges_and_freshness(lakehouse, spark):
    now = datetime.now(UTC)
    good = quality.validate(spark, "silver.orders", _orders(spark, [("o1", "u1", "PAID", 10, now)]))
    assert good.success and good.failures == []

    bad = quality.validate(spark, "silver.orders", _orders(spark, [
        ("o1", "u1", "PAID", 10, now - timedelta(days=30)),
        ("o1", "u2", "PAID", -5, now - timedelta(days=30)),
        (None, "u3", "PAID", 1, now - timedelta(days=30)),
    ]))
    assert not bad.success
    assert _failed(bad) == {"expect_column_values_to_be_unique", "expect_column_values_to_not_be_null",
                            "expect_column_values_to_be_between", "expect_column_max_to_be_between"}


def test_a_table_that_suddenly_loses_most_rows_fails_the_row_count_delta(lakehouse, spark):
    now = datetime.now(UTC)
    many = quality.validate(spark, "silver.orders", _orders(spark, [(f"o{i}", "u", "PAID", 1, now) for i in range(10)]))
    quality.record(spark, [many])

    few = quality.validate(spark, "silver.orders", _orders(spark, [("o1", "u", "PAID", 1, now)]))
    assert _failed(few) == {"expect_table_row_count_to_be_between"}
