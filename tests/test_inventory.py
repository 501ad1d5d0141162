"""Inventory: warehouses, adjustments, reservations that expire, low-stock events."""

import time
import uuid

import pytest
from typer.testing import CliRunner

from tests.factories import buyer, seller, staff
from tests.factories_commerce import add_to_cart, checkout, owner_rows, stock_of, stocked_sku
from transactional.db import PLATFORM, session_scope
from transactional.services import inventory


def _adjust(client, headers, sku, delta, reason="received", warehouse=None):
    return client.post(
        "/v1/inventory/adjustments",
        headers=headers,
        json={
            "sku_id": str(sku.sku_id),
            "warehouse_id": str(warehouse or sku.warehouse_ids[0]),
            "delta": delta,
            "reason": reason,
        },
    )


def _reserve_expired(sku, quantity):
    """A reservation for `quantity` units whose time to live has already run out."""
    with session_scope(PLATFORM) as session:
        inventory.reserve(session, {sku.sku_id: quantity}, order_id=None, ttl_seconds=-1)


def test_warehouses_and_adjustments_with_reasons(client):
    tenant_id, admin = seller(client)
    worker = staff(client, admin)
    sku = stocked_sku(tenant_id, stock=0)
    created = client.post(
        "/v1/inventory/warehouses",
        headers=admin,
        json={"code": "BLR-1", "name": "Bengaluru", "address": {"city": "Bengaluru"}},
    )
    assert created.status_code == 201
    assert (
        client.post(
            "/v1/inventory/warehouses", headers=admin, json={"code": "BLR-1", "name": "x"}
        ).status_code
        == 409
    )
    assert (
        client.post("/v1/inventory/warehouses", headers=worker, json={"code": "X", "name": "x"}).status_code
        == 403
    )
    second = created.json()["id"]

    assert _adjust(client, worker, sku, 12).json()["available"] == 12
    assert _adjust(client, admin, sku, 4, warehouse=second).json()["available"] == 4
    assert _adjust(client, worker, sku, -2, reason="damaged").json()["available"] == 10
    too_many = _adjust(client, worker, sku, -11, reason="damaged")
    zero = _adjust(client, worker, sku, 0)

    assert too_many.status_code == 409 and too_many.json()["errors"][0]["field"] == "delta"
    assert zero.status_code == 422 and zero.json()["errors"][0]["field"] == "delta"
    assert stock_of(sku.sku_id) == (14, 0)
    history = client.get(f"/v1/inventory/adjustments?sku_id={sku.sku_id}", headers=admin).json()
    assert sorted((a["delta"], a["reason"]) for a in history) == [
        (-2, "damaged"),
        (4, "received"),
        (12, "received"),
    ]
    levels = client.get(f"/v1/inventory/levels?sku_id={sku.sku_id}", headers=worker).json()
    assert sorted(level["available"] for level in levels) == [4, 10]
    assert {w["code"] for w in client.get("/v1/inventory/warehouses", headers=worker).json()} >= {"BLR-1"}


def test_a_seller_cannot_touch_another_sellers_stock(client):
    owner_id, _ = seller(client)
    _, intruder = seller(client)
    sku = stocked_sku(owner_id, stock=5)
    response = _adjust(client, intruder, sku, -5, reason="theft")
    assert response.status_code == 404 and response.json()["errors"][0]["field"] == "sku_id"
    assert client.get(f"/v1/inventory/levels?sku_id={sku.sku_id}", headers=intruder).json() == []
    assert stock_of(sku.sku_id) == (5, 0)


def _low_stock_events():
    return owner_rows(
        "SELECT payload, txid::text FROM outbox WHERE event_type = 'inventory.low_stock' ORDER BY id"
    )


def test_crossing_below_the_threshold_emits_one_low_stock_event(client):
    tenant_id, admin = seller(client)
    sku = stocked_sku(tenant_id, stock=6, threshold=5)

    _adjust(client, admin, sku, -1, reason="damaged")
    assert _low_stock_events() == []
    _adjust(client, admin, sku, -1, reason="damaged")
    _adjust(client, admin, sku, -1, reason="damaged")

    events = _low_stock_events()
    assert [(e[0]["available"], e[0]["threshold"], e[0]["sku_id"]) for e in events] == [
        (4, 5, str(sku.sku_id))
    ]
    low = client.get("/v1/inventory/levels?low_stock=true", headers=admin).json()
    assert [level["sku_id"] for level in low] == [str(sku.sku_id)]


def test_a_checkout_that_crosses_the_threshold_emits_the_event_in_its_own_transaction(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=6, threshold=5)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 3)

    assert checkout(client, headers).json()["status"] == "PAID"

    ((payload, txid),) = _low_stock_events()
    order_txid = owner_rows("SELECT txid::text FROM outbox WHERE event_type = 'order.created'")[0][0]
    assert payload["available"] == 3 and txid == order_txid


def test_expired_reservations_are_released_by_the_cli(db):
    from orchestration.cli import app

    sku = _sku_without_api()
    _reserve_expired(sku, 4)
    assert stock_of(sku.sku_id) == (6, 4)

    result = CliRunner().invoke(app, ["inventory", "release-expired"])

    assert result.exit_code == 0, result.output
    assert "released 1 expired reservation" in result.output
    assert stock_of(sku.sku_id) == (10, 0)
    assert CliRunner().invoke(app, ["inventory", "release-expired", "--help"]).exit_code == 0


def _sku_without_api():
    from transactional.models import Tenant

    with session_scope(PLATFORM) as session:
        tenant = Tenant(
            slug=f"t-{uuid.uuid4().hex[:8]}", legal_name="T", store_name="T", branding={}, shipping={}
        )
        session.add(tenant)
    return stocked_sku(tenant.id, stock=10)


def test_reserving_first_releases_expired_reservations_of_that_sku(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=2)
    _reserve_expired(sku, 2)
    assert stock_of(sku.sku_id) == (0, 2)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 2)

    assert checkout(client, headers).json()["status"] == "PAID"
    assert stock_of(sku.sku_id) == (0, 0)
    assert sorted(owner_rows("SELECT status FROM stock_reservations")) == [("committed",), ("released",)]


@pytest.mark.slow
def test_the_api_releases_expired_reservations_in_the_background(db, monkeypatch):
    from fastapi.testclient import TestClient

    from transactional.api.app import create_app
    from transactional.config import get_settings

    monkeypatch.setattr(get_settings(), "reservation_ttl_seconds", 4)  # background round every second
    sku = _sku_without_api()
    _reserve_expired(sku, 3)
    with TestClient(create_app()):
        deadline = time.monotonic() + 30
        while stock_of(sku.sku_id) != (10, 0) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert stock_of(sku.sku_id) == (10, 0)
