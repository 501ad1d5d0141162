"""Historical orders: write orders, sub-orders, items, payments, status changes, refunds and
reviews that happened in the past, with their original timestamps and statuses.

Live orders go through the checkout saga (stock reservations, payment provider); history did
not happen here, so it is recorded as it was: the data generator and the Olist importer load
it through this module. It writes under platform scope (row-level security still applies;
the capture trigger still writes the outbox), set-based, and is idempotent: the caller gives
each order a deterministic id, child ids derive from it, and orders already stored are skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.orm import Session

from transactional.db import PLATFORM, acting_as
from transactional.models import (
    Order, OrderItem, OrderStatus, OrderStatusChange, Payment, PaymentStatus, Refund, Review, SubOrder,
)

HISTORY_PROVIDER = "historical"


@dataclass(frozen=True, slots=True)
class HistoricalItem:
    product_id: uuid.UUID
    sku_id: uuid.UUID
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class HistoricalSubOrder:
    tenant_id: uuid.UUID
    items: Sequence[HistoricalItem]
    tax_total: Decimal = Decimal("0")
    shipping_total: Decimal = Decimal("0")
    commission: Decimal = Decimal("0")

    @property
    def items_total(self) -> Decimal:
        return sum((item.unit_price * item.quantity for item in self.items), Decimal("0"))


@dataclass(frozen=True, slots=True)
class HistoricalPayment:
    attempt: int
    status: PaymentStatus
    amount: Decimal
    method: str
    created_at: datetime
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoricalOrder:
    """`timeline` lists the statuses the order went through after PAYMENT_PENDING (at
    `placed_at`), each with when it happened; the last one is the order's status."""

    id: uuid.UUID
    buyer_id: uuid.UUID
    placed_at: datetime
    sub_orders: Sequence[HistoricalSubOrder]
    timeline: Sequence[tuple[OrderStatus, datetime]] = ()
    payments: Sequence[HistoricalPayment] = ()
    currency: str = "USD"
    shipping_address: dict = field(default_factory=dict)
    shipping_method: str = "standard"
    payment_method: str = "card"

    @property
    def status(self) -> OrderStatus:
        return self.timeline[-1][0] if self.timeline else OrderStatus.PAYMENT_PENDING

    @property
    def updated_at(self) -> datetime:
        return self.timeline[-1][1] if self.timeline else self.placed_at


@dataclass(frozen=True, slots=True)
class HistoricalReview:
    id: uuid.UUID
    buyer_id: uuid.UUID
    tenant_id: uuid.UUID
    product_id: uuid.UUID
    order_item_id: uuid.UUID
    rating: int
    comment: str
    created_at: datetime


@dataclass(frozen=True)
class WriteResult:
    written: int
    skipped: int


def sub_order_id(order_id: uuid.UUID, tenant_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(order_id, f"sub-order:{tenant_id}")


def order_item_id(order_id: uuid.UUID, index: int) -> uuid.UUID:
    """The id of the order's `index`-th item, counting through its sub-orders in the given order."""
    return uuid.uuid5(order_id, f"item:{index}")


def payment_id(order_id: uuid.UUID, attempt: int) -> uuid.UUID:
    return uuid.uuid5(order_id, f"payment:{attempt}")


@contextmanager
def _as_platform(session: Session) -> Iterator[None]:
    if session.info.get("access") == PLATFORM:
        yield
    else:
        with acting_as(session, PLATFORM):
            yield


def write_orders(session: Session, orders: Sequence[HistoricalOrder]) -> WriteResult:
    """Store the orders not stored yet, with every child row, in the caller's transaction."""
    with _as_platform(session):
        known = set(session.scalars(select(Order.id).where(Order.id.in_([order.id for order in orders]))))
        new = [order for order in orders if order.id not in known]
        rows = _OrderRows()
        for order in new:
            rows.add(order)
        for table, values in rows.tables():
            if values:
                session.execute(insert(table), values)
    return WriteResult(written=len(new), skipped=len(orders) - len(new))


class _OrderRows:
    def __init__(self) -> None:
        self.orders: list[dict] = []
        self.sub_orders: list[dict] = []
        self.items: list[dict] = []
        self.payments: list[dict] = []
        self.changes: list[dict] = []
        self.refunds: list[dict] = []

    def tables(self):
        return [(Order.__table__, self.orders), (SubOrder.__table__, self.sub_orders),
                (OrderItem.__table__, self.items), (Payment.__table__, self.payments),
                (OrderStatusChange.__table__, self.changes), (Refund.__table__, self.refunds)]

    def add(self, order: HistoricalOrder) -> None:
        status, updated = order.status, order.updated_at
        zero = Decimal("0")
        items_total = sum((sub.items_total for sub in order.sub_orders), zero)
        tax_total = sum((sub.tax_total for sub in order.sub_orders), zero)
        shipping_total = sum((sub.shipping_total for sub in order.sub_orders), zero)
        self.orders.append({
            "id": order.id, "buyer_id": order.buyer_id, "idempotency_key": f"history:{order.id}", "status": status,
            "currency": order.currency, "items_total": items_total, "tax_total": tax_total,
            "shipping_total": shipping_total, "grand_total": items_total + tax_total + shipping_total,
            "shipping_address": order.shipping_address, "shipping_method": order.shipping_method,
            "payment_method": order.payment_method,
            "failure_reason": "payment declined" if status == OrderStatus.PAYMENT_FAILED else None,
            "placed_at": order.placed_at, "updated_at": updated,
        })
        for payment in order.payments:
            self.payments.append({
                "id": payment_id(order.id, payment.attempt), "order_id": order.id, "buyer_id": order.buyer_id,
                "attempt": payment.attempt, "provider": HISTORY_PROVIDER, "method": payment.method,
                "status": payment.status, "amount": payment.amount,
                "refunded_amount": payment.amount if payment.status == PaymentStatus.refunded else Decimal("0"),
                "currency": order.currency, "provider_reference": f"hist_{payment_id(order.id, payment.attempt).hex}",
                "failure_reason": payment.failure_reason, "created_at": payment.created_at, "updated_at": updated,
            })
        refunded_payment = next((p for p in order.payments if p.status == PaymentStatus.refunded), None)
        item_index = 0
        for sub in order.sub_orders:
            sub_id = sub_order_id(order.id, sub.tenant_id)
            self.sub_orders.append({
                "id": sub_id, "order_id": order.id, "tenant_id": sub.tenant_id, "buyer_id": order.buyer_id,
                "status": status, "items_total": sub.items_total, "tax_total": sub.tax_total,
                "shipping_total": sub.shipping_total, "commission": sub.commission,
                "created_at": order.placed_at, "updated_at": updated,
            })
            for item in sub.items:
                self.items.append({
                    "id": order_item_id(order.id, item_index), "order_id": order.id, "sub_order_id": sub_id,
                    "tenant_id": sub.tenant_id, "buyer_id": order.buyer_id, "product_id": item.product_id,
                    "sku_id": item.sku_id, "quantity": item.quantity, "unit_price": item.unit_price,
                    "created_at": order.placed_at,
                })
                item_index += 1
            previous = None
            for to_status, at in [(OrderStatus.PAYMENT_PENDING, order.placed_at), *order.timeline]:
                self.changes.append({
                    "sub_order_id": sub_id, "tenant_id": sub.tenant_id, "buyer_id": order.buyer_id,
                    "from_status": previous, "to_status": to_status.value, "actor_user_id": None, "changed_at": at,
                })
                previous = to_status.value
            if status == OrderStatus.REFUNDED and refunded_payment is not None:
                self.refunds.append({
                    "id": uuid.uuid5(sub_id, "refund"), "payment_id": payment_id(order.id, refunded_payment.attempt),
                    "sub_order_id": sub_id, "tenant_id": sub.tenant_id, "buyer_id": order.buyer_id,
                    "amount": sub.items_total + sub.tax_total + sub.shipping_total,
                    "provider_reference": f"hist_refund_{sub_id.hex}", "status": "succeeded", "created_at": updated,
                })


_REFRESH_RATINGS = text(
    """
    UPDATE products AS p SET rating_avg = r.average, rating_count = r.count
    FROM (SELECT product_id, round(avg(rating), 2) AS average, count(*) AS count FROM reviews
          WHERE moderation_status = 'approved' AND product_id = ANY(:product_ids) GROUP BY product_id) AS r
    WHERE p.id = r.product_id AND (p.rating_avg IS DISTINCT FROM r.average OR p.rating_count <> r.count)
    """
)


def write_reviews(session: Session, reviews: Sequence[HistoricalReview]) -> WriteResult:
    """Store approved historical reviews (one per buyer and product: later duplicates are skipped)
    and refresh the reviewed products' rating average and count."""
    if not reviews:
        return WriteResult(0, 0)
    with _as_platform(session):
        rows = [{
            "id": review.id, "tenant_id": review.tenant_id, "product_id": review.product_id,
            "order_item_id": review.order_item_id, "buyer_id": review.buyer_id, "rating": review.rating,
            "comment": review.comment, "moderation_status": "approved", "created_at": review.created_at,
            "updated_at": review.created_at,
        } for review in reviews]
        written = session.execute(upsert(Review.__table__).on_conflict_do_nothing().returning(Review.id), rows)
        count = len(written.all())
        session.execute(_REFRESH_RATINGS, {"product_ids": sorted({review.product_id for review in reviews})})
    return WriteResult(written=count, skipped=len(reviews) - count)
