"""Shopper events: per-type validation naming index and field, atomic batches, duplicates ignored,
attribution to the caller, batch limits, and bulk ingestion through the service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tests.factories import buyer, platform_admin, seller
from transactional.db import PLATFORM, AccessContext, owner_engine, session_scope
from transactional.models import Product, ShopperEvent
from transactional.services.change_feed import FeedPosition, read_changes
from transactional.services.events import EVENTS, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, ingest_events

PRODUCT = str(uuid.uuid4())


def event(kind: str = "view", **fields) -> dict:
    body = {"event_id": str(uuid.uuid4()), "type": kind, "anonymous_id": "device-1", "session_id": "session-1",
            "occurred_at": datetime.now(UTC).isoformat()}
    if kind == "search":
        body["query"] = "red running shoes"
    else:
        body["product_id"] = PRODUCT
    return {**body, **fields}


def stored() -> list[ShopperEvent]:
    with session_scope(PLATFORM) as session:
        return list(session.scalars(select(ShopperEvent).order_by(ShopperEvent.seq)))


def field_errors(response) -> set[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return {error["field"] for error in response.json()["errors"]}


def test_a_batch_of_every_event_type_is_stored_with_its_fields(client):
    occurred = datetime(2018, 3, 4, 5, 6, 7, tzinfo=UTC)
    batch = [
        event("impression", position=3, query="shoes"),
        event("view", context={"page": "/p/1", "device": {"os": "android"}}),
        event("search", occurred_at=occurred.isoformat()),
        event("click", position=0),
        event("add_to_cart", quantity=2),
        event("remove_from_cart"),
        event("purchase", quantity=3, context={"order_id": "o-1"}),
    ]
    response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 7, "duplicates": 0}

    rows = {row.event_type: row for row in stored()}
    assert set(rows) == {"impression", "view", "search", "click", "add_to_cart", "remove_from_cart", "purchase"}
    assert (rows["impression"].position, rows["impression"].query) == (3, "shoes")
    assert rows["view"].context == {"page": "/p/1", "device": {"os": "android"}}
    assert rows["search"].query == "red running shoes" and rows["search"].product_id is None
    assert rows["search"].occurred_at == occurred
    assert rows["add_to_cart"].quantity == 2 and rows["remove_from_cart"].quantity == 1
    assert rows["purchase"].context == {"order_id": "o-1"}
    assert all(row.anonymous_id == "device-1" and row.user_id is None for row in rows.values())


def test_repeated_event_ids_are_counted_as_duplicates_and_stored_once(client):
    first, second = event(), event("search")
    assert client.post("/v1/events", json={"events": [first, first]}).json() == {"accepted": 1, "duplicates": 1}
    response = client.post("/v1/events", json={"events": [first, second]})
    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert sorted(str(row.event_id) for row in stored()) == sorted([first["event_id"], second["event_id"]])


@pytest.mark.parametrize(
    ("bad_event", "field"),
    [
        ({"type": "search", "query": None}, "query"),
        ({"type": "search", "query": ""}, "query"),
        ({"type": "view", "product_id": None}, "product_id"),
        ({"type": "click", "product_id": "not-a-uuid"}, "product_id"),
        ({"type": "add_to_cart", "quantity": 0}, "quantity"),
        ({"type": "teleport"}, "type"),
        ({"event_id": "42"}, "event_id"),
        ({"session_id": ""}, "session_id"),
        ({"occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "occurred_at"),
        ({"occurred_at": "2024-05-01T10:00:00"}, "occurred_at"),
        ({"position": -1, "type": "impression"}, "position"),
        ({"type": "search", "product_id": PRODUCT}, "product_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_invalid_event_rejects_the_whole_batch_naming_its_index_and_field(client, bad_event, field):
    base = event(bad_event.get("type", "search"))
    invalid = {key: value for key, value in {**base, **bad_event}.items() if value is not None}
    response = client.post("/v1/events", json={"events": [event(), invalid, event("search")]})
    assert response.status_code == 422, response.text
    assert field_errors(response) == {f"events.1.{field}"}
    assert stored() == []


def test_every_invalid_event_of_a_batch_is_reported(client):
    batch = [event("search", query=None), event(), event("view", product_id=None)]
    batch = [{key: value for key, value in item.items() if value is not None} for item in batch]
    response = client.post("/v1/events", json={"events": batch})
    assert field_errors(response) == {"events.0.query", "events.2.product_id"}


@pytest.mark.parametrize(
    ("body", "field"),
    [(b"not json", "body"), (b"{}", "events"), (b'{"events": []}', "events"), (b'{"events": {}}', "events")],
)
def test_malformed_bodies_are_refused_naming_the_field(client, body, field):
    response = client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert field_errors(response) == {field}


def test_text_with_a_nul_character_is_refused_naming_the_field(client):
    response = client.post("/v1/events", json={"events": [event(), event(session_id="a\x00b"),
                                                          event(context={"note": ["ok", "x\x00"]})]})
    assert response.status_code == 422
    assert field_errors(response) == {"events.1.session_id", "events.2.context"}
    assert stored() == []


def test_anonymous_callers_need_an_anonymous_id_and_may_not_name_a_user(client):
    without_id = {key: value for key, value in event().items() if key != "anonymous_id"}
    response = client.post("/v1/events", json={"events": [event(), without_id]})
    assert field_errors(response) == {"events.1.anonymous_id"}

    response = client.post("/v1/events", json={"events": [event(user_id=str(uuid.uuid4()))]})
    assert response.status_code == 422
    assert field_errors(response) == {"events.0.user_id"}
    assert stored() == []


def test_a_signed_in_shoppers_events_are_attributed_to_them(client):
    headers = buyer(client)
    shopper_id = uuid.UUID(client.get("/v1/auth/userinfo", headers=headers).json()["id"])
    without_any_id = {key: value for key, value in event().items() if key != "anonymous_id"}
    own = event(user_id=str(shopper_id))
    response = client.post("/v1/events", headers=headers, json={"events": [without_any_id, own]})
    assert response.json() == {"accepted": 2, "duplicates": 0}
    assert {row.user_id for row in stored()} == {shopper_id}

    someone_else = event(user_id=str(uuid.uuid4()))
    response = client.post("/v1/events", headers=headers, json={"events": [event(), someone_else]})
    assert field_errors(response) == {"events.1.user_id"}


def test_sellers_may_not_name_users_but_the_platform_may(client):
    _, seller_headers = seller(client)
    user_id = str(uuid.uuid4())
    response = client.post("/v1/events", headers=seller_headers, json={"events": [event(user_id=user_id)]})
    assert field_errors(response) == {"events.0.user_id"}

    admin_headers = platform_admin(client)
    response = client.post("/v1/events", headers=admin_headers, json={"events": [event(user_id=user_id)]})
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert str(stored()[0].user_id) == user_id


def test_a_known_products_seller_is_the_events_tenant(client):
    tenant_id, _ = seller(client)
    other_tenant_id, _ = seller(client)
    with session_scope(AccessContext("tenant", tenant_id=uuid.UUID(tenant_id))) as session:
        product = Product(tenant_id=uuid.UUID(tenant_id), title="Trail shoe")
        session.add(product)
        session.flush()
        product_id = str(product.id)
    batch = [event("view", product_id=product_id, tenant_id=other_tenant_id),
             event("search", tenant_id=other_tenant_id), event("view")]
    assert client.post("/v1/events", json={"events": batch}).json()["accepted"] == 3
    tenants = {row.event_type + ("-known" if str(row.product_id) == product_id else ""): row.tenant_id
               for row in stored()}
    assert tenants == {"view-known": uuid.UUID(tenant_id), "search": uuid.UUID(other_tenant_id), "view": None}


def test_batches_beyond_the_limits_are_refused_with_413(client):
    too_many = [event() for _ in range(MAX_BATCH_EVENTS + 1)]
    response = client.post("/v1/events", json={"events": too_many})
    assert response.status_code == 413
    assert field_errors(response) == {"events"}

    huge = event(context={"blob": "x" * (MAX_BATCH_BYTES + 1)})
    response = client.post("/v1/events", json={"events": [huge]})
    assert response.status_code == 413
    assert field_errors(response) == {"body"}
    assert stored() == []


def test_a_full_batch_is_accepted(client):
    batch = [event() for _ in range(MAX_BATCH_EVENTS)]
    assert client.post("/v1/events", json={"events": batch}).json() == {"accepted": MAX_BATCH_EVENTS,
                                                                          "duplicates": 0}


def test_the_service_loads_historical_events_in_bulk_and_the_feed_sees_them(db):
    start = datetime(2017, 1, 1, tzinfo=UTC)
    events = EVENTS.validate_python([
        event("view", occurred_at=start + timedelta(minutes=index), anonymous_id=f"device-{index % 97}")
        for index in range(5000)
    ])
    with session_scope(PLATFORM) as session:
        result = ingest_events(session, events)
    assert (result.accepted, result.duplicates) == (5000, 0)
    with session_scope(PLATFORM) as session:
        again = ingest_events(session, events[:10])
    assert (again.accepted, again.duplicates) == (0, 10)

    with owner_engine().connect() as connection:
        earliest = connection.execute(text("SELECT min(occurred_at), count(*) FROM shopper_events")).one()
        feed = read_changes(connection, "shopper_events", FeedPosition())
    assert tuple(earliest) == (start, 5000)
    assert len(feed.rows) == 5000
