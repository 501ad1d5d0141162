"""Data-subject requests in PostgreSQL: erase (right to be forgotten) and export (right of access)
one user.

Erasure anonymises the user where the platform holds them: identity and credentials, the street
part of their shipping addresses, refresh tokens, carts, the personal context of their shopper
events, and the copies of those fields the change capture kept in the outbox and audit log. Their
orders, payments and reviews stay (the marketplace's books need them) but name nobody any more.
Export returns every row about the user, secrets left out.

Both act across tenants and on the append-only change log, so they run on an owner connection
(`transactional.db.owner_engine`) in the platform's row-level-security scope. The lakehouse has
its own half (`pipelines.gdpr`); `marketlake gdpr erase|export` runs both.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

from transactional.errors import BadRequest, NotFound

# Rows held about a user: table -> the column naming them.
HELD_ABOUT_USER = {
    "users": "id", "orders": "buyer_id", "sub_orders": "buyer_id", "order_items": "buyer_id",
    "payments": "buyer_id", "refunds": "buyer_id", "reviews": "buyer_id", "carts": "buyer_id",
    "cart_items": "buyer_id", "order_status_changes": "buyer_id", "shopper_events": "user_id",
}
# Never exported, not even to the user.
SECRET_COLUMNS = {"users": ("password_hash",)}

# (what it erases, statement); each statement is idempotent, so an erasure can be repeated.
ANONYMISE = (
    ("users", ("UPDATE users SET email = NULL, phone = NULL, full_name = NULL, external_ref = NULL,"
               " is_active = false, password_hash = '!erased' WHERE id = :user AND (password_hash <> '!erased'"
               " OR is_active OR num_nonnulls(email, phone, full_name, external_ref) > 0)")),
    ("orders", ("UPDATE orders SET shipping_address = jsonb_build_object('country', shipping_address->'country')"
                " WHERE buyer_id = :user AND shipping_address - 'country' <> '{}'::jsonb")),
    ("refresh_tokens", "DELETE FROM refresh_tokens WHERE user_id = :user"),
    ("cart_items", "DELETE FROM cart_items WHERE buyer_id = :user"),
    ("carts", "DELETE FROM carts WHERE buyer_id = :user"),
    ("shopper_events", ("UPDATE shopper_events SET user_id = NULL, anonymous_id = NULL, context = '{}'::jsonb"
                        " WHERE user_id = :user")),
    # The change log keeps copies of the personal fields it captured.
    ("outbox", ("UPDATE outbox SET payload = payload - 'email' - 'phone' - 'full_name'"
                " WHERE aggregate_type = 'user' AND aggregate_id = CAST(:user AS text)"
                " AND payload ?| array['email', 'phone', 'full_name']")),
    ("outbox", ("UPDATE outbox SET payload = payload - 'shipping_address'"
                " WHERE aggregate_type = 'order' AND payload->>'buyer_id' = CAST(:user AS text)"
                " AND payload ? 'shipping_address'")),
    ("audit_log", ("UPDATE audit_log SET changes = '{}'::jsonb"
                   " WHERE entity_type = 'user' AND entity_id = CAST(:user AS text) AND changes <> '{}'::jsonb")),
)


def parse_user_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest(f"{value!r} is not a user id (a UUID)", field="user") from None


def _as_platform(connection: Connection, user_id: uuid.UUID) -> None:
    # FORCEd row-level security applies to the owner too: act as the platform.
    connection.execute(text("SELECT set_config('app.scope', 'platform', true)"))
    if not connection.execute(text("SELECT 1 FROM users WHERE id = :user"), {"user": user_id}).first():
        raise NotFound(f"no user {user_id}", field="user")


def anonymise_user(connection: Connection, user_id: uuid.UUID) -> dict[str, int]:
    """Erase the user's personal data in this transaction; returns the rows changed per table
    (all zero when they were erased before)."""
    _as_platform(connection, user_id)
    changed: dict[str, int] = {}
    for table, statement in ANONYMISE:
        changed[table] = changed.get(table, 0) + connection.execute(text(statement), {"user": user_id}).rowcount
    return changed


def export_user(connection: Connection, user_id: uuid.UUID) -> dict[str, list[dict]]:
    """Every row about the user per table (as JSON objects), secrets left out."""
    _as_platform(connection, user_id)
    held = {}
    for table, column in HELD_ABOUT_USER.items():
        hidden = "".join(f" - '{secret}'" for secret in SECRET_COLUMNS.get(table, ()))
        held[table] = list(connection.execute(
            text(f"SELECT to_jsonb(t){hidden} FROM {table} AS t WHERE {column} = :user"), {"user": user_id}).scalars())
    return held
