"""GDPR through `marketlake gdpr erase|export`, which runs PostgreSQL's half
(transactional.services.gdpr) and the lakehouse's (pipelines.gdpr): erase removes a user from
PostgreSQL's personal fields and from every lakehouse table, old file versions included; export
writes everything held about them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from orchestration.cli import app
from pipelines import bronze, gold, silver, tables
from tests.lakehouse import sources
from transactional.db import PLATFORM, owner_engine, session_scope
from transactional.models import Order


def _everything(spark):
    bronze.ingest(spark)
    silver.build_silver(spark)
    gold.build_gold(spark)


def _erase(user_id: str):
    """`marketlake gdpr erase` in this process (on the test session's Spark)."""
    return CliRunner().invoke(app, ["gdpr", "erase", "--user", user_id])


def _data_files_mention(root, value: str) -> list[str]:
    """Data files (of any table version) holding `value`, besides the erasure list itself."""
    erasures = root / "system" / "gdpr_erasures"
    return [str(path.relative_to(root)) for path in root.rglob("*.parquet")
            if erasures not in path.parents and value in json.dumps(pq.read_table(path).to_pylist(), default=str)]


def _world(spark):
    store = sources.shop(products=2)
    leaving = sources.shopper(email="leaving@mail.example.com", phone="+44 7700 900123")
    staying = sources.shopper()
    for buyer in (leaving, staying):
        sources.order(buyer, store, review=4)
        sources.events([{"event_type": "view", "session_id": f"s-{buyer}", "user_id": buyer,
                         "product_id": store.product_ids[0], "tenant_id": store.tenant_id}])
    _everything(spark)
    return store, str(leaving), str(staying)


@pytest.mark.slow
def test_erase_removes_the_user_everywhere_including_old_versions(lakehouse, spark):
    _, leaving, staying = _world(spark)
    assert _data_files_mention(lakehouse, leaving)  # the user was there

    erased = _erase(leaving)

    assert erased.exit_code == 0, erased.output
    report = json.loads(erased.stdout)
    assert report["postgres_rows_anonymised"]["users"] == 1
    assert {"bronze.outbox", "bronze.shopper_events", "silver.users", "silver.orders", "silver.events",
            "gold.interactions"} <= set(report["rows_removed"])
    assert report["files_vacuumed"] > 0
    assert _data_files_mention(lakehouse, leaving) == []
    assert _data_files_mention(lakehouse, staying)  # nobody else was touched
    with owner_engine().connect() as connection:
        user = connection.execute(text("SELECT email, phone, full_name, is_active FROM users WHERE id = :u"),
                                  {"u": leaving}).one()
        captured = connection.execute(text(
            "SELECT count(*) FROM outbox WHERE payload::text LIKE '%leaving@mail%'")).scalar()
    assert tuple(user) == (None, None, None, False) and captured == 0

    # Their order is shipped later: the change about them is dropped at the lakehouse's door.
    with session_scope(PLATFORM) as session:
        session.query(Order).filter(Order.buyer_id == leaving).update({"status": "SHIPPED"})
    _everything(spark)
    assert _data_files_mention(lakehouse, leaving) == []
    orders = tables.read(spark, silver.silver_uri("orders")).collect()
    assert [row["buyer_id"] for row in orders] == [staying]


@pytest.mark.slow
def test_export_writes_everything_held_about_the_user(lakehouse, spark, tmp_path):
    _, leaving, staying = _world(spark)
    out = tmp_path / "export"
    result = subprocess.run([sys.executable, "-m", "orchestration.cli", "gdpr", "export", "--user", leaving,
                             "--out", str(out)], capture_output=True, text=True, check=True)
    files = json.loads(result.stdout)["files"]

    assert files["postgres.users"] == 1 and files["postgres.orders"] == 1 and files["postgres.reviews"] == 1
    assert {"lakehouse.bronze.outbox", "lakehouse.silver.orders", "lakehouse.silver.users",
            "lakehouse.gold.interactions"} <= set(files)
    [user] = json.loads((out / "postgres.users.json").read_text())
    assert user["email"] == "leaving@mail.example.com" and "password_hash" not in user
    exported = "".join(path.read_text() for path in out.glob("*.json"))
    assert staying not in exported


def test_erase_refuses_a_malformed_or_unknown_user_and_erases_nothing(lakehouse, spark):
    _, _, staying = _world(spark)
    before = _data_files_mention(lakehouse, staying)

    malformed, unknown = _erase("not-a-uuid"), _erase(str(uuid.uuid4()))

    assert (malformed.exit_code, unknown.exit_code) == (2, 2)
    assert "is not a user id" in malformed.stderr and "no user" in unknown.stderr
    assert _data_files_mention(lakehouse, staying) == before
    assert not tables.exists(tables.table_uri(*bronze.ERASURES))
