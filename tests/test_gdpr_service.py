"""GDPR in PostgreSQL (transactional.services.gdpr): erasure leaves no personal field of the user
anywhere, the change log's copies included, keeps the books, and can be repeated; export returns
every row about the user and nobody else's."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.factories import PASSWORD, login
from tests.lakehouse import sources
from transactional.db import PLATFORM, AccessContext, owner_engine, session_scope
from transactional.errors import BadRequest, NotFound
from transactional.models import Role, User
from transactional.services import gdpr
from transactional.services.auth import register_user

EMAIL = "leaving@mail.example.com"


def _registered_buyer(client, email: str, phone: str) -> uuid.UUID:
    response = client.post("/v1/auth/register", json={"email": email, "phone": phone, "password": PASSWORD,
                                                      "full_name": "Leaving Person"})
    assert response.status_code == 201, response.text
    login(client, email)  # a refresh token to revoke
    return uuid.UUID(response.json()["id"])


def _corrected_by_an_admin(user_id: uuid.UUID, phone: str) -> None:
    """An administrator edits the user: the audit log keeps the old and new values."""
    with session_scope(PLATFORM) as session:
        admin = register_user(session, email=f"ops-{uuid.uuid4().hex[:6]}@marketlake.example.com",
                              password=PASSWORD, role=Role.platform_admin).id
    with session_scope(AccessContext("platform", user_id=admin)) as session:
        session.get(User, user_id).phone = phone


def _personal_traces(user_id: uuid.UUID) -> dict[str, int]:
    """Rows anywhere in PostgreSQL that still hold one of the user's personal values."""
    with owner_engine().begin() as connection:
        connection.execute(text("SELECT set_config('app.scope', 'platform', true)"))
        return {table: connection.execute(text(statement), {"user": user_id}).scalar() for table, statement in {
            "users": "SELECT count(*) FROM users WHERE id = :user AND (email IS NOT NULL OR phone IS NOT NULL"
                     " OR full_name IS NOT NULL OR is_active)",
            "orders": "SELECT count(*) FROM orders WHERE buyer_id = :user AND shipping_address::text LIKE '%Secret%'",
            "refresh_tokens": "SELECT count(*) FROM refresh_tokens WHERE user_id = :user",
            "outbox": f"SELECT count(*) FROM outbox WHERE payload::text LIKE '%{EMAIL}%'"
                      " OR payload::text LIKE '%Secret Street%'",
            "audit_log": "SELECT count(*) FROM audit_log WHERE changes::text LIKE '%7700900%'",
            "shopper_events": "SELECT count(*) FROM shopper_events WHERE user_id = :user",
        }.items()}


def _erase(user_id: uuid.UUID) -> dict[str, int]:
    with owner_engine().begin() as connection:
        return gdpr.anonymise_user(connection, user_id)


def test_erasure_anonymises_the_user_everywhere_and_keeps_the_books(client):
    leaving = _registered_buyer(client, EMAIL, "+447700900123")
    _corrected_by_an_admin(leaving, "+447700900999")
    store = sources.shop(products=1)
    order_id = sources.order(leaving, store, review=4)
    sources.events([{"event_type": "view", "session_id": "s-leaving", "user_id": leaving,
                     "product_id": store.product_ids[0], "context": {"ip": "203.0.113.9"}}])
    assert all(_personal_traces(leaving).values())

    changed = _erase(leaving)

    assert _personal_traces(leaving) == dict.fromkeys(_personal_traces(leaving), 0)
    assert changed["users"] == 1 and changed["refresh_tokens"] >= 1 and changed["outbox"] >= 2
    with owner_engine().begin() as connection:
        connection.execute(text("SELECT set_config('app.scope', 'platform', true)"))
        address, total = connection.execute(text("SELECT shipping_address, grand_total FROM orders WHERE id = :o"),
                                            {"o": order_id}).one()
        reviews = connection.execute(text("SELECT count(*) FROM reviews WHERE buyer_id = :u"), {"u": leaving}).scalar()
    assert address == {"country": "FR"} and total > 0 and reviews == 1
    assert client.post("/v1/auth/login", json={"login": EMAIL, "password": PASSWORD}).status_code == 401

    assert set(_erase(leaving).values()) == {0}  # a repeated erasure finds nothing left


def test_export_returns_every_row_about_the_user_without_secrets(client):
    leaving = _registered_buyer(client, EMAIL, "+447700900123")
    staying = _registered_buyer(client, "staying@mail.example.com", "+447700900456")
    store = sources.shop(products=1)
    for buyer in (leaving, staying):
        sources.order(buyer, store, review=5)

    with owner_engine().begin() as connection:
        held = gdpr.export_user(connection, leaving)

    assert set(held) == set(gdpr.HELD_ABOUT_USER)
    [user] = held["users"]
    assert user["email"] == EMAIL and user["full_name"] == "Leaving Person" and "password_hash" not in user
    assert [len(held[table]) for table in ("orders", "sub_orders", "order_items", "payments", "reviews")] == [1] * 5
    assert str(staying) not in repr(held)


def test_unknown_and_malformed_users_are_refused_naming_the_field(db):
    with pytest.raises(BadRequest) as malformed:
        gdpr.parse_user_id("not-a-uuid")
    with pytest.raises(NotFound) as unknown, owner_engine().begin() as connection:
        gdpr.anonymise_user(connection, uuid.uuid4())
    assert malformed.value.errors[0]["field"] == unknown.value.errors[0]["field"] == "user"
