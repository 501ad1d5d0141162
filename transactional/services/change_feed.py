"""Read the outbox and the shopper event log in transaction order without ever skipping a row.

Ids are handed out when rows are inserted, not when transactions commit, so a reader that
remembers "the last id I saw" skips a row whose transaction commits after a higher id's. Each
row records its transaction id (`txid`); a reader here only takes rows whose transaction is
older than the oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`), which are
all settled, in (txid, id) order, and resumes from the last (txid, id) it returned.

`read_changes` hands out rows as dicts (small reads); `read_changes_arrow` reads the same rows as
one Arrow table through the ADBC PostgreSQL driver (binary COPY into columns, no Python object per
value), for bulk readers such as the lakehouse's bronze ingest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from adbc_driver_postgresql import dbapi as adbc
from adbc_driver_postgresql.dbapi import Connection as ArrowConnection
from sqlalchemy import Connection, Engine, text

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


def _settled_rows_sql(feed: Feed, select: str, after: FeedPosition, limit: int) -> str:
    """The next settled rows of `feed` after `after`, in (txid, seq) order. The position and limit
    are inlined (as ints) because PostgreSQL streams a COPY of a query only without parameters."""
    seq = _SEQUENCE_COLUMN[feed]
    return (
        f"SELECT {select} FROM {feed} AS f"
        f" WHERE (f.txid, f.{seq}) > ('{int(after.txid)}'::xid8, {int(after.seq)})"
        "   AND f.txid < pg_snapshot_xmin(pg_current_snapshot())"
        f" ORDER BY f.txid, f.{seq} LIMIT {int(limit)}"
    )


def read_changes(connection: Connection, feed: Feed, after: FeedPosition, limit: int = 10_000) -> FeedBatch:
    """The next settled rows of `feed` after `after` (each row a dict, its txid an int)."""
    seq = _SEQUENCE_COLUMN[feed]
    rows = connection.execute(
        text(_settled_rows_sql(feed, "f.*, f.txid::text::bigint AS txid_number", after, limit))
    ).mappings().all()
    if not rows:
        return FeedBatch([], after)
    last = rows[-1]
    records = [{**row, "txid": row["txid_number"]} for row in rows]
    for record in records:
        del record["txid_number"]
    return FeedBatch(records, FeedPosition(int(last["txid_number"]), int(last[seq])))


@dataclass(frozen=True)
class ArrowFeedBatch:
    rows: pa.Table
    position: FeedPosition


def arrow_connection(engine: Engine) -> ArrowConnection:
    """An ADBC connection to `engine`'s database, in autocommit (no transaction left open between
    batches)."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return adbc.connect(url, autocommit=True)


def read_changes_arrow(connection: ArrowConnection, feed: Feed, after: FeedPosition, columns: Mapping[str, str],
                       limit: int = 10_000) -> ArrowFeedBatch:
    """The rows `read_changes` would return, as Arrow: `txid` (int64), `feed_seq` (the row's id/seq)
    and `columns` (output name -> SQL expression over the feed's row `f`)."""
    seq = _SEQUENCE_COLUMN[feed]
    select = ", ".join(["f.txid::text::bigint AS txid", f"f.{seq} AS feed_seq",
                        *(f"{expression} AS {name}" for name, expression in columns.items())])
    with connection.cursor() as cursor:
        cursor.execute(_settled_rows_sql(feed, select, after, limit))
        rows = cursor.fetch_arrow_table()
    if not rows.num_rows:
        return ArrowFeedBatch(rows, after)
    return ArrowFeedBatch(rows, FeedPosition(rows["txid"][-1].as_py(), rows["feed_seq"][-1].as_py()))
