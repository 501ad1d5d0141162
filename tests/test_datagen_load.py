"""A generated marketplace loads through the services end to end, under row-level security, and
loading it again changes nothing."""

from __future__ import annotations

from functools import cache

import polars as pl
import pytest
from sqlalchemy import func, select

from transactional.datagen.generator import generate_marketplace
from transactional.datagen.loader import DEMO_PASSWORD, load_marketplace
from transactional.db import PLATFORM, AccessContext, session_scope
from transactional.models import (
    InventoryLevel, Order, OrderItem, OrderStatusChange, OutboxEvent, Payment, Product, Refund, Review, ShopperEvent,
    Sku, SubOrder, Tenant, TenantStatus, User,
)

pytestmark = pytest.mark.slow


@cache
def tiny():
    return generate_marketplace("tiny", seed=21)


def _count(model, access=PLATFORM, *where) -> int:
    with session_scope(access) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_tiny_marketplace_loads_through_the_services_and_reloading_changes_nothing(db):
    data = tiny()
    summary = load_marketplace(data)
    assert summary.written["products"] == data.products.height
    assert _count(Tenant, PLATFORM, Tenant.status == TenantStatus.active) == data.tenants.height
    assert _count(Sku) == data.skus.height
    assert _count(InventoryLevel) == data.inventory.height
    assert _count(User, PLATFORM, User.external_ref.like("datagen:%:buyer:%")) == data.buyers.height
    assert _count(Order) == data.orders.height
    assert _count(SubOrder) == data.sub_orders.height
    assert _count(OrderItem) == data.order_items.height
    assert _count(Payment) == data.payments.height
    assert _count(Review) == data.reviews.height
    assert _count(ShopperEvent) == data.events.height
    with session_scope(PLATFORM) as session:
        reported = session.scalars(select(ShopperEvent.context["result_count"].as_integer()).where(
            ShopperEvent.event_type == "search")).all()
    assert sorted(reported) == sorted(data.events.filter(pl.col("event_type") == "search")["result_count"].to_list())
    assert _count(Refund) == data.orders.filter(pl.col("status") == "REFUNDED").height
    # every sub-order's history starts at PAYMENT_PENDING and ends at its status
    assert _count(OrderStatusChange, PLATFORM, OrderStatusChange.from_status.is_(None)) == data.sub_orders.height

    outbox = _count(OutboxEvent)
    again = load_marketplace(data)
    assert sum(again.written.values()) == 0, again.written
    assert _count(OutboxEvent) == outbox


def test_loaded_data_respects_tenancy_and_history(db):
    data = tiny()
    load_marketplace(data)
    with session_scope(PLATFORM) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.external_ref == data.tenants["external_ref"][0]))
        orders = session.execute(select(Order.status, Order.grand_total, Order.items_total, Order.tax_total,
                                        Order.shipping_total)).all()
        rated = session.scalar(select(func.count()).select_from(Product).where(Product.rating_count > 0))
    seller = AccessContext("tenant", tenant_id=tenant_id)
    assert _count(Product, seller) == data.products.filter(pl.col("tenant_idx") == 0).height
    assert sorted(status.value for status, *_ in orders) == sorted(data.orders["status"].to_list())
    assert all(grand == items + tax + shipping for _, grand, items, tax, shipping in orders)
    assert rated == data.reviews["product_idx"].n_unique()


def test_generated_buyers_sign_in_with_the_demo_password(client):
    load_marketplace(tiny())
    email = tiny().buyers["email"][0]
    response = client.post("/v1/auth/login", json={"login": email, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    admin = tiny().tenants["admin_email"][0]
    assert client.post("/v1/auth/login", json={"login": admin, "password": DEMO_PASSWORD}).status_code == 200


def test_buyers_see_their_historical_orders_through_the_api(client):
    data = tiny()
    load_marketplace(data)
    buyer_idx = data.orders["buyer_idx"].mode()[0]
    email = data.buyers["email"][buyer_idx]
    token = client.post("/v1/auth/login", json={"login": email, "password": DEMO_PASSWORD}).json()["access_token"]
    response = client.get("/v1/orders", headers={"Authorization": f"Bearer {token}"}, params={"limit": 100})
    assert response.status_code == 200, response.text
    mine = data.orders.filter(pl.col("buyer_idx") == buyer_idx)
    assert sorted(order["id"] for order in response.json()) == sorted(mine["id"].to_list())
    delivered = [order for order in response.json() if order["status"] == "DELIVERED"]
    assert all(sub["history"][0]["to_status"] == "PAYMENT_PENDING" for order in delivered for sub in order["sub_orders"])
