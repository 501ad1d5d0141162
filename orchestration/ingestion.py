"""Ingestion: the transactional outbox and shopper events into Delta bronze, and the sensor that
starts a refresh as soon as either feed has settled rows bronze has not taken yet."""

from datetime import date

import dagster as dg
from sqlalchemy import text

from orchestration.resources import RETRY, PlatformDatabase
from pipelines import bronze, tables
from transactional.services.change_feed import FeedPosition

GROUP = "ingestion"
BRONZE_KEYS = {feed: dg.AssetKey(["bronze", bronze.BRONZE_TABLE[feed]]) for feed in bronze.FEEDS}


@dg.multi_asset(
    specs=[dg.AssetSpec(key, group_name=GROUP, description=f"Every settled `{feed}` row, exactly once (Delta).",
                        kinds={"delta", "spark"}) for feed, key in BRONZE_KEYS.items()],
    retry_policy=RETRY,
)
def bronze_feeds(context: dg.AssetExecutionContext):
    """Drain both change feeds into bronze (one Delta commit per micro-batch, resumable)."""
    from pipelines.engine import get_spark

    for report in bronze.ingest(get_spark()):
        context.log.info(f"{report.feed}: {report.rows} rows in {report.batches} batches")
        yield dg.MaterializeResult(asset_key=BRONZE_KEYS[report.feed], metadata={
            "rows": report.rows, "batches": report.batches, "rows_per_second": round(report.rows_per_second, 1),
            "position": f"{report.position.txid}.{report.position.seq}",
            "freshness_p95_seconds": report.freshness()["p95"],
        })


# --- change detection ----------------------------------------------------------------------------

def bronze_position(feed: str) -> FeedPosition:
    """Where bronze stands in the feed, from its newest commit's metadata (no Spark needed)."""
    metadata = tables.latest_commit_metadata(bronze.bronze_uri(feed), bronze.POSITION_KEY)
    if metadata is None:
        return FeedPosition()
    position = metadata[bronze.POSITION_KEY]
    return FeedPosition(int(position["txid"]), int(position["seq"]))


_PENDING = """
SELECT max(txid::text::bigint) AS txid, max({seq}) AS seq, count(*) AS rows{days}
FROM {feed}
WHERE (txid, {seq}) > (CAST(CAST(:txid AS text) AS xid8), :seq)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
"""


def pending_changes(database: PlatformDatabase) -> dict[str, dict]:
    """Per feed, the settled rows past bronze: how many, the newest (txid, seq), and for shopper
    events the days they happened on (the warehouse partitions a refresh must reload)."""
    pending = {}
    with database.engine().connect() as connection:
        for feed in bronze.FEEDS:
            after = bronze_position(feed)
            days = (", min((occurred_at AT TIME ZONE 'UTC')::date) AS first_day,"
                    " max((occurred_at AT TIME ZONE 'UTC')::date) AS last_day") if feed == "shopper_events" else ""
            seq = "id" if feed == "outbox" else "seq"
            row = connection.execute(text(_PENDING.format(feed=feed, seq=seq, days=days)),
                                     {"txid": after.txid, "seq": after.seq}).mappings().one()
            if row["rows"]:
                pending[feed] = dict(row)
    return pending


def refresh_request(pending: dict[str, dict], today: date) -> dg.RunRequest:
    """A refresh of the whole graph; the daily partitions are those of the new events (or today)."""
    events = pending.get("shopper_events", {})
    first, last = events.get("first_day") or today, events.get("last_day") or today
    run_key = "|".join(f"{feed}:{row['txid']}.{row['seq']}" for feed, row in sorted(pending.items()))
    return dg.RunRequest(run_key=run_key, tags={
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
        "marketlake/trigger": "new-changes",
    })


defs = dg.Definitions(assets=[bronze_feeds])
