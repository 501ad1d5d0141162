"""Importing generic interaction data: formats, validation with file/line/column (nothing written),
idempotent re-runs and atomic replacement."""

from __future__ import annotations

import gzip

import pytest
from sqlalchemy import func, select

from transactional.datagen.interactions import import_interactions
from transactional.datagen.validation import ImportRejected
from transactional.db import PLATFORM, session_scope
from transactional.models import ExternalDataset, ExternalInteraction


def _import(path, fmt, dataset="test-set"):
    with session_scope(PLATFORM) as session:
        return import_interactions(session, path=path, fmt=fmt, dataset=dataset)


def _rows(dataset="test-set"):
    with session_scope(PLATFORM) as session:
        return session.execute(
            select(ExternalInteraction.user_ref, ExternalInteraction.item_ref, ExternalInteraction.position,
                   ExternalInteraction.weight)
            .where(ExternalInteraction.dataset == dataset).order_by(ExternalInteraction.user_ref,
                                                                    ExternalInteraction.position)
        ).all()


def test_csv_with_aliases_iso_and_epoch_times_orders_each_user_by_time(db, tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("user_id,item_id,timestamp,rating\nu1,b,2024-01-02T10:00:00,4\nu1,a,1704067200,5\nu2,a,,\n")
    result = _import(path, "csv")
    assert (result.status, result.rows, result.users, result.items) == ("imported", 3, 2, 2)
    assert _rows() == [("u1", "a", 0, 5.0), ("u1", "b", 1, 4.0), ("u2", "a", 0, None)]


def test_movielens_whitespace_and_double_colon_formats(db, tmp_path):
    path = tmp_path / "u.data.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("196\t242\t3 \t881250949\n186\t302\t3\t891717742\n")
    assert _import(path, "movielens").rows == 2
    dat = tmp_path / "ratings.dat"
    dat.write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    assert _import(dat, "movielens", "ml-1m").rows == 2
    assert _rows("ml-1m") == [("1", "1193", 0, 5.0), ("1", "661", 1, 3.0)]


def test_sequences_keep_their_order(db, tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("7 10 11 12\n8,3,1\n")
    _import(path, "sequence")
    assert [(u, i, p) for u, i, p, _ in _rows()] == [("7", "10", 0), ("7", "11", 1), ("7", "12", 2),
                                                     ("8", "3", 0), ("8", "1", 1)]


def test_bad_files_are_reported_with_file_line_and_column_and_write_nothing(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"user,item,timestamp,weight\nu1,a,yesterday,1\nu2,,2024-01-01,x\n"
                     b"u3,b,2024-01-01,1,9\nu4,\xff\xfe,2024-01-01,1\n")
    with pytest.raises(ImportRejected) as caught:
        _import(path, "csv")
    reported = {(p.file, p.line, p.column) for p in caught.value.problems}
    assert {("bad.csv", 2, "timestamp"), ("bad.csv", 3, "item"), ("bad.csv", 3, "weight"),
            ("bad.csv", 4, None), ("bad.csv", 5, None)} <= reported
    assert "bad.csv:2 [timestamp]" in str(caught.value)
    assert _rows() == []
    with session_scope(PLATFORM) as session:
        assert session.scalar(select(func.count()).select_from(ExternalDataset)) == 0


def test_missing_columns_and_duplicate_ratings_are_rejected(db, tmp_path):
    no_item = tmp_path / "no_item.csv"
    no_item.write_text("user,when\nu1,2024-01-01\n")
    with pytest.raises(ImportRejected, match=r"no_item.csv:1 \[item\]: missing column"):
        _import(no_item, "csv")
    duplicated = tmp_path / "dup.data"
    duplicated.write_text("1 2 3 100\n1 2 4 200\n")
    with pytest.raises(ImportRejected, match=r"dup.data:2 \[item\]: user 1 already rated item 2 on line 1"):
        _import(duplicated, "movielens")


def test_reimport_is_idempotent_and_a_changed_file_replaces_the_set(db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("user,item\nu1,a\nu1,b\n")
    assert _import(path, "csv").status == "imported"
    first_ids = _ids()
    assert _import(path, "csv").status == "unchanged"
    assert _ids() == first_ids
    path.write_text("user,item\nu9,z\n")
    assert _import(path, "csv").status == "imported"
    assert [(u, i) for u, i, _, _ in _rows()] == [("u9", "z")]


def _ids():
    with session_scope(PLATFORM) as session:
        return session.scalars(select(ExternalInteraction.id).order_by(ExternalInteraction.id)).all()


@pytest.mark.shared_data
@pytest.mark.slow
def test_movielens_100k_from_shared_data(db, shared_data):
    result = _import(shared_data / "movielens-100k" / "u.data.gz", "movielens", "movielens-100k")
    assert (result.rows, result.users, result.items) == (100_000, 943, 1_682)
