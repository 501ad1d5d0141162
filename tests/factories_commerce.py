"""Builders for commerce tests. Products and SKUs are inserted through the ORM under the seller's
tenant-scoped session (the catalog API is built separately); many buyers are made at once with
one password hash and directly issued tokens, since hashing dominates otherwise."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import func, select, text

from tests.factories import PASSWORD, bearer
from transactional.db import PLATFORM, AccessContext, owner_engine, session_scope
from transactional.models import (
    InventoryLevel,
    Product,
    ProductStatus,
    Role,
    Sku,
    Tenant,
    User,
    Warehouse,
)
from transactional.services.security import hash_password, issue_access_token

ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Market St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


@dataclass(frozen=True)
class StockedSku:
    tenant_id: uuid.UUID
    product_id: uuid.UUID
    sku_id: uuid.UUID
    warehouse_ids: list[uuid.UUID]


def configure_store(
    tenant_id: str | uuid.UUID,
    *,
    tax_rate: str = "0",
    commission_rate: str = "0.10",
    shipping: dict | None = None,
) -> None:
    with session_scope(PLATFORM) as session:
        tenant = session.get(Tenant, uuid.UUID(str(tenant_id)))
        tenant.tax_rate, tenant.commission_rate = Decimal(tax_rate), Decimal(commission_rate)
        tenant.shipping = shipping or {}


def stocked_sku(
    tenant_id: str | uuid.UUID,
    *,
    price: str = "10.00",
    stock: list[int] | int = 10,
    threshold: int = 0,
    currency: str = "USD",
) -> StockedSku:
    """An active product with one SKU, stocked in one warehouse per entry of `stock`."""
    tenant_id = uuid.UUID(str(tenant_id))
    per_warehouse = [stock] if isinstance(stock, int) else stock
    suffix = uuid.uuid4().hex[:8]
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        product = Product(
            tenant_id=tenant_id,
            title=f"Product {suffix}",
            status=ProductStatus.active,
            attributes={},
            images=[],
            min_price=Decimal(price),
        )
        session.add(product)
        session.flush()
        sku = Sku(
            tenant_id=tenant_id,
            product_id=product.id,
            sku_code=f"SKU-{suffix}",
            price=Decimal(price),
            currency=currency,
            attributes={},
            low_stock_threshold=threshold,
        )
        warehouses = [
            Warehouse(tenant_id=tenant_id, code=f"W{n}-{suffix}", name=f"Warehouse {n}", address={})
            for n in range(len(per_warehouse))
        ]
        session.add_all([sku, *warehouses])
        session.flush()
        session.add_all(
            InventoryLevel(tenant_id=tenant_id, sku_id=sku.id, warehouse_id=w.id, available=units, reserved=0)
            for w, units in zip(warehouses, per_warehouse, strict=True)
        )
    return StockedSku(tenant_id, product.id, sku.id, [w.id for w in warehouses])


def set_price(sku_id: uuid.UUID, price: str) -> None:
    with session_scope(PLATFORM) as session:
        session.get(Sku, sku_id).price = Decimal(price)


@lru_cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


def buyers(count: int) -> list[dict[str, str]]:
    """`count` buyer accounts, as Authorization headers."""
    users = [
        User(
            email=f"bulk-{uuid.uuid4().hex[:12]}@shop.example.com",
            password_hash=_password_hash(),
            role=Role.buyer,
        )
        for _ in range(count)
    ]
    with session_scope(PLATFORM) as session:
        session.add_all(users)
    return [bearer(issue_access_token(user.id, Role.buyer, None)[0]) for user in users]


def user_id(client, headers: dict[str, str]) -> uuid.UUID:
    return uuid.UUID(client.get("/v1/auth/userinfo", headers=headers).json()["id"])


def add_to_cart(client, headers: dict[str, str], sku_id: uuid.UUID, quantity: int = 1) -> None:
    response = client.post(
        "/v1/cart/items", headers=headers, json={"sku_id": str(sku_id), "quantity": quantity}
    )
    assert response.status_code == 201, response.text


def checkout(
    client,
    headers: dict[str, str],
    key: str | None = None,
    *,
    method: str = "card",
    token: str = "tok_visa",
    shipping_method: str = "standard",
):
    return client.post(
        "/v1/checkout",
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
        json={
            "shipping_address": ADDRESS,
            "shipping_method": shipping_method,
            "payment": {"method": method, "token": token},
        },
    )


def move(client, seller_headers: dict[str, str], sub_order_id: str, *statuses: str) -> dict:
    body = {}
    for status in statuses:
        response = client.post(
            f"/v1/tenant/orders/{sub_order_id}/status", headers=seller_headers, json={"status": status}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    return body


def stock_of(sku_id: uuid.UUID) -> tuple[int, int]:
    """(available, reserved) of a SKU over all warehouses, read as the owner."""
    with owner_engine().connect() as connection:
        row = connection.execute(
            select(
                func.coalesce(func.sum(InventoryLevel.available), 0),
                func.coalesce(func.sum(InventoryLevel.reserved), 0),
            ).where(InventoryLevel.sku_id == sku_id)
        ).one()
    return int(row[0]), int(row[1])


def owner_rows(sql: str, **params) -> list:
    with owner_engine().connect() as connection:
        return connection.execute(text(sql), params).all()
