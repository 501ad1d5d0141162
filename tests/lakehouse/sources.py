"""Source rows for lakehouse tests, written the way the platform writes them: ORM rows in
platform scope (the capture trigger writes their outbox events) and shopper events."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from transactional.db import PLATFORM, owner_engine, session_scope
from transactional.models import (
    InventoryLevel,
    Order,
    OrderItem,
    Payment,
    Product,
    Review,
    Role,
    Sku,
    SubOrder,
    Tenant,
    User,
    Warehouse,
)
from transactional.models.catalog import Category

_n = itertools.count()


@dataclass
class Shop:
    tenant_id: uuid.UUID
    category_id: uuid.UUID
    product_ids: list[uuid.UUID] = field(default_factory=list)
    sku_ids: list[uuid.UUID] = field(default_factory=list)


def shop(products: int = 3) -> Shop:
    n = next(_n)
    with session_scope(PLATFORM) as session:
        tenant = Tenant(slug=f"shop-{n}-{uuid.uuid4().hex[:6]}", legal_name=f"Shop {n}", store_name=f"Shop {n}",
                        status="active")
        category = Category(slug=f"cat-{n}-{uuid.uuid4().hex[:6]}", name=f"Category {n}")
        session.add_all([tenant, category])
        session.flush()
        warehouse = Warehouse(tenant_id=tenant.id, code="main", name="Main")
        session.add(warehouse)
        made = Shop(tenant.id, category.id)
        for i in range(products):
            product = Product(tenant_id=tenant.id, title=f"Product {n}.{i}", category_id=category.id,
                              status="active", min_price=Decimal("10.00") + i)
            session.add(product)
            session.flush()
            sku = Sku(tenant_id=tenant.id, product_id=product.id, sku_code=f"SKU-{n}-{i}",
                      price=Decimal("10.00") + i, currency="USD")
            session.add(sku)
            session.flush()
            session.add(InventoryLevel(tenant_id=tenant.id, sku_id=sku.id, warehouse_id=warehouse.id, available=50))
            made.product_ids.append(product.id)
            made.sku_ids.append(sku.id)
    return made


def shopper(email: str | None = None, phone: str | None = None) -> uuid.UUID:
    n = next(_n)
    with session_scope(PLATFORM) as session:
        user = User(email=email or f"shopper{n}-{uuid.uuid4().hex[:6]}@mail.example.com", phone=phone,
                    full_name=f"Shopper Number{n}", password_hash="x", role=Role.buyer)
        session.add(user)
        session.flush()
        return user.id


def order(buyer_id: uuid.UUID, store: Shop, item: int = 0, quantity: int = 1, review: int | None = None) -> uuid.UUID:
    price = Decimal("10.00") + item
    total = price * quantity
    with session_scope(PLATFORM) as session:
        placed = Order(buyer_id=buyer_id, idempotency_key=uuid.uuid4().hex, status="PAID", currency="USD",
                       items_total=total, tax_total=Decimal(0), shipping_total=Decimal(0), grand_total=total,
                       shipping_address={"name": "Private Person", "line1": "1 Secret Street", "city": "Lyon",
                                         "country": "FR", "phone": "+33 6 12 34 56 78"},
                       shipping_method="standard", payment_method="card")
        session.add(placed)
        session.flush()
        sub = SubOrder(order_id=placed.id, tenant_id=store.tenant_id, buyer_id=buyer_id, status="PAID",
                       items_total=total, tax_total=Decimal(0), shipping_total=Decimal(0),
                       commission=total * Decimal("0.1"))
        session.add(sub)
        session.flush()
        line = OrderItem(order_id=placed.id, sub_order_id=sub.id, tenant_id=store.tenant_id, buyer_id=buyer_id,
                         product_id=store.product_ids[item], sku_id=store.sku_ids[item], quantity=quantity,
                         unit_price=price)
        session.add(line)
        session.add(Payment(order_id=placed.id, buyer_id=buyer_id, provider="sim", method="card", status="captured",
                            amount=total, currency="USD"))
        session.flush()
        if review is not None:
            session.add(Review(tenant_id=store.tenant_id, product_id=store.product_ids[item], order_item_id=line.id,
                               buyer_id=buyer_id, rating=review, comment="fine", moderation_status="approved"))
        return placed.id


def reprice(sku_id: uuid.UUID, price: str) -> None:
    with session_scope(PLATFORM) as session:
        session.get(Sku, sku_id).price = Decimal(price)


def retitle(product_id: uuid.UUID, title: str) -> None:
    with session_scope(PLATFORM) as session:
        product = session.get(Product, product_id)
        product.title = title
        product.version += 1


def events(rows: list[dict]) -> None:
    """Shopper events: each dict needs event_type and session_id; the rest is optional."""
    now = datetime.now(UTC)
    with owner_engine().begin() as connection:
        for i, row in enumerate(rows):
            connection.execute(text(
                "INSERT INTO shopper_events (event_id, event_type, user_id, anonymous_id, session_id, occurred_at,"
                " tenant_id, product_id, sku_id, query, position, quantity, context)"
                " VALUES (:event_id, :event_type, :user_id, :anonymous_id, :session_id, :occurred_at, :tenant_id,"
                " :product_id, :sku_id, :query, :position, :quantity, CAST(:context AS jsonb))"
            ), {
                "event_id": row.get("event_id", uuid.uuid4()), "user_id": row.get("user_id"),
                "anonymous_id": row.get("anonymous_id", None if row.get("user_id") else "anon-1"),
                "occurred_at": row.get("occurred_at", now - timedelta(seconds=len(rows) - i)),
                "tenant_id": row.get("tenant_id"), "product_id": row.get("product_id"), "sku_id": row.get("sku_id"),
                "query": row.get("query"), "position": row.get("position"), "quantity": row.get("quantity"),
                "context": json.dumps(row.get("context", {})), "event_type": row["event_type"],
                "session_id": row["session_id"],
            })


def raw_outbox(count: int, per_transaction: int = 50) -> None:
    with owner_engine().connect() as connection:
        for start in range(0, count, per_transaction):
            connection.execute(text(
                "INSERT INTO outbox (event_type, schema_version, aggregate_type, aggregate_id, payload)"
                " SELECT 'test.created', 1, 'test', g::text, jsonb_build_object('n', g)"
                " FROM generate_series(CAST(:first AS int), CAST(:last AS int)) g"
            ), {"first": start + 1, "last": min(start + per_transaction, count)})
            connection.commit()


def outbox_event_ids() -> list[str]:
    with owner_engine().connect() as connection:
        return [str(v) for v in connection.execute(text("SELECT event_id FROM outbox")).scalars()]


def shopper_event_ids() -> list[str]:
    with owner_engine().connect() as connection:
        return [str(v) for v in connection.execute(text("SELECT event_id FROM shopper_events")).scalars()]
