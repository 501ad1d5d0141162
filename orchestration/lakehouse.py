"""Lakehouse: silver (current state and history from bronze) and gold (derived tables), with the
lakehouse's Great Expectations suites as blocking asset checks: a silver table that fails its
suite stops gold, and a gold table that fails keeps its last published version and stops what
reads it."""

import dagster as dg

from orchestration.ingestion import BRONZE_KEYS
from orchestration.resources import RETRY
from pipelines import gold, silver

GROUP = "lakehouse"
QUALITY = "quality_gate"
SILVER_TABLES = (*(entity.table for entity in silver.ENTITIES), *(table for table, _, _ in silver.HISTORIES), "events")


def silver_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", table])


def gold_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", table])


def _check_result(key: dg.AssetKey, result) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key, check_name=QUALITY, passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"rows": result.row_count, "failures": dg.MetadataValue.md(
            "\n".join(f"- {failure}" for failure in result.failures) or "none")},
    )


def _gate(key: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(QUALITY, asset=key, blocking=True, description=description)


@dg.multi_asset(
    specs=[dg.AssetSpec(silver_key(table), group_name=GROUP, deps=list(BRONZE_KEYS.values()), kinds={"delta", "spark"},
                        description=f"silver.{table}: typed, deduplicated current state (Delta).")
           for table in SILVER_TABLES],
    check_specs=[_gate(silver_key(table), "Great Expectations suite: keys, ranges, references, freshness, "
                                          "row-count delta") for table in SILVER_TABLES],
    retry_policy=RETRY,
)
def silver_tables(context: dg.AssetExecutionContext):
    """Bring silver up to date with bronze, then run every silver suite on the stored tables."""
    from pipelines.engine import get_spark

    spark = get_spark()
    report = silver.build_silver(spark)
    context.log.info(f"silver: {report.changes} changes, {report.events} events into {report.tables}")
    results = gold.validate_silver(spark)
    for table in SILVER_TABLES:
        yield dg.MaterializeResult(asset_key=silver_key(table),
                                   metadata={"changed": table in report.tables})
        if table in results:
            yield _check_result(silver_key(table), results[table])
        else:
            yield dg.AssetCheckResult(asset_key=silver_key(table), check_name=QUALITY, passed=True,
                                      metadata={"rows": 0, "failures": "not built yet: nothing to check"})


@dg.multi_asset(
    specs=[dg.AssetSpec(gold_key(table.name), group_name=GROUP, skippable=True, kinds={"delta", "spark"},
                        deps=[silver_key(name) for name in table.reads],
                        description=f"gold.{table.name}: published only when its gates pass (Delta).")
           for table in gold.GOLD_TABLES],
    check_specs=[_gate(gold_key(table.name), "Great Expectations suite of the candidate table")
                 for table in gold.GOLD_TABLES],
    retry_policy=RETRY,
)
def gold_tables(context: dg.AssetExecutionContext):
    """Recompute gold from silver; publish each table whose own and upstream suites pass."""
    from pipelines.engine import get_spark

    report = gold.build_gold(get_spark())
    results = {result.table: result for result in report.results}
    for table in gold.GOLD_TABLES:
        key = gold_key(table.name)
        if table.name in report.published:
            yield dg.MaterializeResult(asset_key=key, metadata={
                "rows": results[f"gold.{table.name}"].row_count, "quality_run": report.run_id})
        if f"gold.{table.name}" in results:
            yield _check_result(key, results[f"gold.{table.name}"])
        else:  # held back by a failing silver suite before its own could run
            yield dg.AssetCheckResult(asset_key=key, check_name=QUALITY, passed=False,
                                      metadata={"failures": "\n".join(report.blocked[table.name])})
        if table.name in report.blocked:
            context.log.warning(f"gold.{table.name} not published: {report.blocked[table.name]}")


defs = dg.Definitions(assets=[silver_tables, gold_tables])
