"""The change feed never skips a row committed out of id order."""

from sqlalchemy import text

from transactional.db import owner_engine
from transactional.services.change_feed import FeedPosition, arrow_connection, read_changes, read_changes_arrow

INSERT = text(
    "INSERT INTO outbox (event_type, schema_version, aggregate_type, aggregate_id, payload)"
    " VALUES (:type, 1, 'test', :id, '{}') RETURNING id"
)


def _drain(connection, position):
    batch = read_changes(connection, "outbox", position)
    return [row["event_type"] for row in batch.rows], batch.position


def test_rows_committed_in_the_opposite_order_of_their_ids_are_not_skipped(db):
    engine = owner_engine()
    with engine.connect() as first, engine.connect() as second, engine.connect() as reader:
        first.begin()
        first_id = first.execute(INSERT, {"type": "first", "id": "1"}).scalar()
        second.begin()
        second_id = second.execute(INSERT, {"type": "second", "id": "2"}).scalar()
        assert first_id < second_id
        second.commit()  # the higher id commits first

        seen, position = _drain(reader, FeedPosition())
        reader.rollback()
        assert seen == []  # "second" waits until "first", still running, has settled

        first.commit()
        seen, position = _drain(reader, position)
        reader.rollback()
        assert seen == ["first", "second"]

        again, _ = _drain(reader, position)
        assert again == []


def test_aborted_transactions_leave_no_rows_and_do_not_block(db):
    engine = owner_engine()
    with engine.connect() as aborted, engine.connect() as kept, engine.connect() as reader:
        aborted.begin()
        aborted.execute(INSERT, {"type": "aborted", "id": "1"})
        kept.begin()
        kept.execute(INSERT, {"type": "kept", "id": "2"})
        kept.commit()
        aborted.rollback()
        seen, _ = _drain(reader, FeedPosition())
    assert seen == ["kept"]


def test_shopper_events_feed_is_read_by_seq(db):
    with owner_engine().begin() as connection:
        connection.execute(text(
            "INSERT INTO shopper_events (event_id, event_type, session_id, occurred_at, context)"
            " SELECT gen_random_uuid(), 'view', 's' || g, now(), '{}' FROM generate_series(1, 5) g"
        ))
    with owner_engine().connect() as connection:
        first = read_changes(connection, "shopper_events", FeedPosition(), limit=3)
        rest = read_changes(connection, "shopper_events", first.position, limit=3)
    assert len(first.rows) == 3 and len(rest.rows) == 2
    assert {r["session_id"] for r in first.rows + rest.rows} == {f"s{i}" for i in range(1, 6)}


def test_the_arrow_read_pages_through_the_same_rows_as_the_row_read(db):
    engine = owner_engine()
    for transaction in range(3):
        with engine.begin() as connection:
            for row in range(2):
                connection.execute(INSERT, {"type": f"t{transaction}.{row}", "id": str(row)})
    with engine.connect() as connection, arrow_connection(engine) as arrow:
        position, arrow_position, pages = FeedPosition(), FeedPosition(), 0
        while True:
            rows = read_changes(connection, "outbox", position, limit=4)
            columns = read_changes_arrow(arrow, "outbox", arrow_position, {"event_type": "f.event_type"}, limit=4)
            assert columns.rows.column("event_type").to_pylist() == [row["event_type"] for row in rows.rows]
            assert columns.rows.column("txid").to_pylist() == [row["txid"] for row in rows.rows]
            assert columns.position == rows.position
            if not rows.rows:
                break
            position, arrow_position, pages = rows.position, columns.position, pages + 1
    assert pages == 2
