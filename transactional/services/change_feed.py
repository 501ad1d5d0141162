"""Read the outbox and the shopper event log in transaction order without ever skipping a row.

Ids are handed out when rows are inserted, not when transactions commit, so a reader that
remembers "the last id I saw" skips a row whose transaction commits after a higher id's. Each
row records its transaction id (`txid`); a reader here only takes rows whose transaction is
older than the oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`), which are
all settled, in (txid, id) order, and resumes from the last (txid, id) it returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

Feed = Literal["outbox", "shopper_events"]
_SEQUENCE_COLUMN = {"outbox": "id", "shopper_events": "seq"}


@dataclass(frozen=True, order=True)
class FeedPosition:
    """Where a reader stands in a feed: after the row (txid, seq). The start is (0, 0)."""

    txid: int = 0
    seq: int = 0


@dataclass(frozen=True)
class FeedBatch:
    rows: list[dict[str, Any]]
    position: FeedPosition


def read_changes(connection: Connection, feed: Feed, after: FeedPosition, limit: int = 10_000) -> FeedBatch:
    """The next settled rows of `feed` after `after` (each row a dict, its txid an int)."""
    seq = _SEQUENCE_COLUMN[feed]
    rows = connection.execute(
        text(
            f"SELECT f.*, f.txid::text::bigint AS txid_number FROM {feed} AS f"
            f" WHERE (txid, {seq}) > (CAST(CAST(:txid AS text) AS xid8), :seq)"
            "   AND txid < pg_snapshot_xmin(pg_current_snapshot())"
            f" ORDER BY f.txid, f.{seq} LIMIT :limit"
        ),
        {"txid": after.txid, "seq": after.seq, "limit": limit},
    ).mappings().all()
    if not rows:
        return FeedBatch([], after)
    last = rows[-1]
    records = [{**row, "txid": row["txid_number"]} for row in rows]
    for record in records:
        del record["txid_number"]
    return FeedBatch(records, FeedPosition(int(last["txid_number"]), int(last[seq])))
