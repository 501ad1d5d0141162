"""The order state machine. Each seller's share of an order (a SubOrder) moves on its own; the
buyer's combined Order shows the least advanced share that is not cancelled.

    PAYMENT_PENDING -> PAID | PAYMENT_FAILED | CANCELLED
    PAYMENT_FAILED  -> PAYMENT_PENDING (payment retried) | CANCELLED
    PAID -> PACKED -> SHIPPED -> DELIVERED -> RETURN_REQUESTED -> REFUNDED
    PAID | PACKED   -> CANCELLED (refunded through the provider, units back on sale)

Every change is recorded in order_status_changes. Every change to an order locks its Order row
first, so changes to one order (a seller's move, the buyer's cancel, a payment settling) run one
at a time and cannot deadlock with each other."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from transactional.db import PLATFORM, acting_as
from transactional.errors import Conflict, NotFound
from transactional.models import Order, OrderItem, OrderStatusChange, Payment, SubOrder
from transactional.models import OrderStatus as S
from transactional.services import inventory
from transactional.services.payments import PaymentProvider, refund_sub_order

TRANSITIONS: dict[S, frozenset[S]] = {
    S.PAYMENT_PENDING: frozenset({S.PAID, S.PAYMENT_FAILED, S.CANCELLED}),
    S.PAYMENT_FAILED: frozenset({S.PAYMENT_PENDING, S.CANCELLED}),
    S.PAID: frozenset({S.PACKED, S.CANCELLED}),
    S.PACKED: frozenset({S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset({S.RETURN_REQUESTED}),
    S.RETURN_REQUESTED: frozenset({S.REFUNDED}),
}
SELLER_MOVES = frozenset({S.PACKED, S.SHIPPED, S.DELIVERED, S.CANCELLED, S.REFUNDED})
# How far along a share is; the combined order shows its least advanced live share.
PROGRESS = [
    S.PAYMENT_FAILED,
    S.PAYMENT_PENDING,
    S.PAID,
    S.PACKED,
    S.SHIPPED,
    S.DELIVERED,
    S.RETURN_REQUESTED,
    S.REFUNDED,
]
REVIEWABLE = frozenset({S.DELIVERED, S.RETURN_REQUESTED, S.REFUNDED})


@dataclass
class SubOrderDetails:
    sub_order: SubOrder
    items: list[OrderItem] = field(default_factory=list)
    history: list[OrderStatusChange] = field(default_factory=list)


@dataclass
class OrderDetails:
    order: Order
    sub_orders: list[SubOrderDetails]
    payments: list[Payment]


def combined_status(statuses: Iterable[S]) -> S:
    live = [status for status in statuses if status != S.CANCELLED]
    return min(live, key=PROGRESS.index) if live else S.CANCELLED


def lock_order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(f"order {order_id} not found", field="order_id")
    return order


def lock_sub_orders(session: Session, order_id: uuid.UUID) -> list[SubOrder]:
    return list(
        session.scalars(
            select(SubOrder)
            .where(SubOrder.order_id == order_id)
            .order_by(SubOrder.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def check_transition(sub_order: SubOrder, to_status: S) -> None:
    if to_status not in TRANSITIONS.get(sub_order.status, frozenset()):
        raise Conflict(
            f"a {sub_order.status.value} order cannot become {to_status.value}",
            field="status",
            current_status=sub_order.status.value,
        )


def record_change(
    session: Session, sub_order: SubOrder, to_status: S | None, actor_user_id: uuid.UUID | None
) -> None:
    """Set a share's status and record the change; None records the status a new share starts in."""
    from_status = sub_order.status.value if to_status is not None else None
    session.add(
        OrderStatusChange(
            sub_order_id=sub_order.id,
            tenant_id=sub_order.tenant_id,
            buyer_id=sub_order.buyer_id,
            from_status=from_status,
            to_status=(to_status or sub_order.status).value,
            actor_user_id=actor_user_id,
        )
    )
    sub_order.status = to_status or sub_order.status


def roll_up(order: Order, sub_orders: list[SubOrder]) -> None:
    order.status = combined_status(sub_order.status for sub_order in sub_orders)


def move_whole_order(
    session: Session,
    order: Order,
    to_status: S,
    *,
    reason: str | None = None,
    actor_user_id: uuid.UUID | None = None,
) -> list[SubOrder]:
    """Payment outcomes move every live share together (the order row is locked by the caller)."""
    sub_orders = lock_sub_orders(session, order.id)
    for sub_order in sub_orders:
        if sub_order.status != S.CANCELLED:
            check_transition(sub_order, to_status)
            record_change(session, sub_order, to_status, actor_user_id)
    order.failure_reason = reason
    roll_up(order, sub_orders)
    session.flush()
    return sub_orders


def _cancel_effects(
    session: Session, provider: PaymentProvider, sub_order: SubOrder, actor_user_id: uuid.UUID | None
) -> None:
    if sub_order.status in (S.PAYMENT_PENDING, S.PAYMENT_FAILED):
        inventory.release_reservations(session, sub_order.order_id, sub_order.tenant_id)
    else:
        refund_sub_order(session, provider, sub_order)
        inventory.restock_order(
            session,
            sub_order.order_id,
            sub_order.tenant_id,
            reason="order_cancelled",
            actor_user_id=actor_user_id,
        )


def _move(
    session: Session,
    provider: PaymentProvider,
    sub_order: SubOrder,
    to_status: S,
    actor_user_id: uuid.UUID | None,
) -> None:
    """One share's transition with its side effects, run as the platform: the caller has already
    established (through its own row-level security) that the actor may touch this share."""
    check_transition(sub_order, to_status)
    if to_status == S.CANCELLED:
        _cancel_effects(session, provider, sub_order, actor_user_id)
    elif to_status == S.REFUNDED:
        refund_sub_order(session, provider, sub_order)
    record_change(session, sub_order, to_status, actor_user_id)


def seller_move(
    session: Session,
    provider: PaymentProvider,
    *,
    sub_order_id: uuid.UUID,
    to_status: S,
    actor_user_id: uuid.UUID,
) -> SubOrder:
    """A seller moves its own share (the tenant-scoped session only sees its own sub-orders)."""
    if to_status not in SELLER_MOVES:
        raise Conflict(f"sellers do not move orders to {to_status.value}", field="status")
    visible = session.get(SubOrder, sub_order_id)
    if visible is None:
        raise NotFound(f"order {sub_order_id} not found", field="sub_order_id")
    with acting_as(session, PLATFORM):
        order = lock_order(session, visible.order_id)
        sub_orders = lock_sub_orders(session, order.id)
        sub_order = next(s for s in sub_orders if s.id == sub_order_id)
        if to_status == S.CANCELLED and sub_order.status not in (S.PAID, S.PACKED):
            raise Conflict(
                "sellers cancel paid orders that have not shipped",
                field="status",
                current_status=sub_order.status.value,
            )
        _move(session, provider, sub_order, to_status, actor_user_id)
        roll_up(order, sub_orders)
        session.flush()
    return sub_order


def _buyer_order(session: Session, buyer_id: uuid.UUID, order_id: uuid.UUID) -> None:
    """Ownership check under the buyer's own row-level security."""
    if session.scalar(select(Order.id).where(Order.id == order_id, Order.buyer_id == buyer_id)) is None:
        raise NotFound(f"order {order_id} not found", field="order_id")


def cancel_order(
    session: Session, provider: PaymentProvider, *, buyer_id: uuid.UUID, order_id: uuid.UUID
) -> None:
    """The buyer cancels every share not yet cancelled; allowed only while none has shipped."""
    _buyer_order(session, buyer_id, order_id)
    with acting_as(session, PLATFORM):
        order = lock_order(session, order_id)
        sub_orders = lock_sub_orders(session, order_id)
        live = [sub_order for sub_order in sub_orders if sub_order.status != S.CANCELLED]
        if not live or any(S.CANCELLED not in TRANSITIONS.get(s.status, frozenset()) for s in live):
            raise Conflict(
                f"a {order.status.value} order can no longer be cancelled",
                field="status",
                current_status=order.status.value,
            )
        for sub_order in live:
            _move(session, provider, sub_order, S.CANCELLED, buyer_id)
        roll_up(order, sub_orders)
        session.flush()


def request_return(
    session: Session,
    *,
    buyer_id: uuid.UUID,
    order_id: uuid.UUID,
    sub_order_id: uuid.UUID,
    provider: PaymentProvider,
) -> None:
    _buyer_order(session, buyer_id, order_id)
    with acting_as(session, PLATFORM):
        order = lock_order(session, order_id)
        sub_orders = lock_sub_orders(session, order_id)
        sub_order = next((s for s in sub_orders if s.id == sub_order_id), None)
        if sub_order is None:
            raise NotFound(f"order {order_id} has no part {sub_order_id}", field="sub_order_id")
        _move(session, provider, sub_order, S.RETURN_REQUESTED, buyer_id)
        roll_up(order, sub_orders)
        session.flush()


def _details(session: Session, orders: list[Order], sub_orders: list[SubOrder]) -> list[OrderDetails]:
    order_ids = [order.id for order in orders]
    by_sub_order = {sub_order.id: SubOrderDetails(sub_order) for sub_order in sub_orders}
    for item in session.scalars(
        select(OrderItem)
        .where(OrderItem.sub_order_id.in_(by_sub_order))
        .order_by(OrderItem.created_at, OrderItem.id)
    ):
        by_sub_order[item.sub_order_id].items.append(item)
    for change in session.scalars(
        select(OrderStatusChange)
        .where(OrderStatusChange.sub_order_id.in_(by_sub_order))
        .order_by(OrderStatusChange.id)
    ):
        by_sub_order[change.sub_order_id].history.append(change)
    payments: dict[uuid.UUID, list[Payment]] = defaultdict(list)
    for payment in session.scalars(
        select(Payment).where(Payment.order_id.in_(order_ids)).order_by(Payment.attempt)
    ):
        payments[payment.order_id].append(payment)
    shares: dict[uuid.UUID, list[SubOrderDetails]] = defaultdict(list)
    for details in by_sub_order.values():
        shares[details.sub_order.order_id].append(details)
    return [OrderDetails(order, shares[order.id], payments[order.id]) for order in orders]


def buyer_orders(
    session: Session, order_ids: list[uuid.UUID] | None = None, *, limit: int = 50, offset: int = 0
) -> list[OrderDetails]:
    """The caller's orders, newest first (row-level security limits them to the buyer's own)."""
    query = select(Order).order_by(Order.placed_at.desc(), Order.id)
    if order_ids is not None:
        query = query.where(Order.id.in_(order_ids))
    orders = list(session.scalars(query.limit(limit).offset(offset)))
    sub_orders = list(
        session.scalars(
            select(SubOrder)
            .where(SubOrder.order_id.in_([o.id for o in orders]))
            .order_by(SubOrder.created_at, SubOrder.id)
        )
    )
    return _details(session, orders, sub_orders)


def buyer_order(session: Session, order_id: uuid.UUID) -> OrderDetails:
    found = buyer_orders(session, [order_id], limit=1)
    if not found:
        raise NotFound(f"order {order_id} not found", field="order_id")
    return found[0]


@dataclass
class SellerOrder:
    details: SubOrderDetails
    order: Order


def seller_orders(
    session: Session,
    *,
    sub_order_ids: list[uuid.UUID] | None = None,
    status: S | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[SellerOrder]:
    """The caller's tenant's shares, with the buyer's order (its address) read as the platform."""
    query = select(SubOrder).order_by(SubOrder.created_at.desc(), SubOrder.id)
    if sub_order_ids is not None:
        query = query.where(SubOrder.id.in_(sub_order_ids))
    if status is not None:
        query = query.where(SubOrder.status == status)
    sub_orders = list(session.scalars(query.limit(limit).offset(offset)))
    with acting_as(session, PLATFORM):
        orders = list(session.scalars(select(Order).where(Order.id.in_({s.order_id for s in sub_orders}))))
    by_id = {order.id: order for order in orders}
    details = _details(session, orders, sub_orders)
    shares = {share.sub_order.id: share for d in details for share in d.sub_orders}
    return [SellerOrder(shares[s.id], by_id[s.order_id]) for s in sub_orders]


def seller_order(session: Session, sub_order_id: uuid.UUID) -> SellerOrder:
    found = seller_orders(session, sub_order_ids=[sub_order_id], limit=1)
    if not found:
        raise NotFound(f"order {sub_order_id} not found", field="sub_order_id")
    return found[0]
