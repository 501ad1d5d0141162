"""Checkout as a saga of short transactions, so no database lock is held while the payment
provider is called:

1. place (one transaction): claim the buyer's Idempotency-Key, check the cart's price snapshots,
   create the Order with one SubOrder per seller (tax, shipping and commission from each seller's
   settings), reserve the stock, open a payment attempt and empty the cart;
2. authorize, then capture, with the provider (no transaction open; voided if capture fails);
3. settle (one transaction): commit the reserved stock and mark the order PAID, or release the
   stock and mark it PAYMENT_FAILED with the reason. A provider webhook can settle the same
   attempt instead (a crash between 2 and 3); whichever comes second finds it settled.

Stock and sub-orders of other tenants are written as the platform (`acting_as`) after the
buyer's ownership was established under their own row-level security."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from transactional.db import PLATFORM, AccessContext, acting_as, session_scope
from transactional.errors import Conflict, NotFound, Unprocessable
from transactional.models import Order, OrderItem, Payment, PaymentStatus, SubOrder, Tenant
from transactional.models import OrderStatus as S
from transactional.services import cart, inventory, orders
from transactional.services.payments import (
    PaymentMethod,
    PaymentProvider,
    ProviderOutcome,
    next_attempt,
    refund_sub_order,
)

T = TypeVar("T")
CENT = Decimal("0.01")
DEFAULT_SHIPPING: dict[str, Any] = {"methods": ["standard"], "flat_rate": "5.00", "free_shipping_over": None}
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


@dataclass(frozen=True)
class CheckoutRequest:
    shipping_address: dict[str, Any]
    shipping_method: str
    payment_method: PaymentMethod
    payment_token: str


@dataclass(frozen=True)
class CheckoutResult:
    order_id: uuid.UUID
    replayed: bool


@dataclass(frozen=True)
class PendingPayment:
    order_id: uuid.UUID
    payment_id: uuid.UUID
    amount: Decimal
    currency: str
    method: PaymentMethod


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def shipping_cost(tenant: Tenant, method: str, items_total: Decimal) -> Decimal:
    """From the seller's shipping settings: pickup is free; standard costs the flat rate unless the
    share reaches free_shipping_over; express costs one flat rate more than standard."""
    config = {**DEFAULT_SHIPPING, **tenant.shipping}
    if method not in config["methods"]:
        raise Unprocessable(
            f"{tenant.store_name} does not offer {method} shipping",
            field="shipping_method",
            tenant_id=str(tenant.id),
        )
    if method == "pickup":
        return Decimal("0.00")
    flat = Decimal(str(config["flat_rate"]))
    free_over = config.get("free_shipping_over")
    standard = Decimal("0.00") if free_over is not None and items_total >= Decimal(str(free_over)) else flat
    return cents(standard + (flat if method == "express" else 0))


def _retrying(transaction: Callable[[], T], attempts: int = 3) -> T:
    """Run a transaction again when PostgreSQL chose it as a deadlock or serialization victim."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _buyer(buyer_id: uuid.UUID) -> AccessContext:
    return AccessContext("shopper", user_id=buyer_id)


def _existing_order(
    session: Session, buyer_id: uuid.UUID, key: str, request: CheckoutRequest
) -> Order | None:
    order = session.scalar(select(Order).where(Order.buyer_id == buyer_id, Order.idempotency_key == key))
    if order is not None and (order.shipping_address, order.shipping_method) != (
        request.shipping_address,
        request.shipping_method,
    ):
        raise Unprocessable(
            "this Idempotency-Key was used for a different checkout",
            field="Idempotency-Key",
            order_id=str(order.id),
        )
    return order


def _checked_lines(session: Session, buyer_id: uuid.UUID) -> list[cart.CartLine]:
    lines = cart.lines(session, buyer_id)
    if not lines:
        raise Unprocessable("the cart is empty", field="cart")
    off_sale = [str(line.sku.id) for line in lines if not line.purchasable]
    if off_sale:
        raise Conflict(
            "some items are no longer on sale; remove them from the cart",
            field="cart",
            unavailable_skus=off_sale,
        )
    changed = [
        line
        for line in lines
        if (line.item.unit_price, line.item.currency) != (line.sku.price, line.sku.currency)
    ]
    if changed:
        raise Conflict(
            "prices changed since these items were added; accept the new prices and check out again",
            field="cart",
            price_changes=[
                {
                    "sku_id": str(line.sku.id),
                    "cart_price": str(line.item.unit_price),
                    "current_price": str(line.sku.price),
                    "currency": line.sku.currency,
                }
                for line in changed
            ],
        )
    if len({line.sku.currency for line in lines}) > 1:
        raise Unprocessable("one checkout takes one currency; the cart mixes several", field="cart")
    return lines


@dataclass(frozen=True)
class Share:
    """One seller's part of a checkout, priced by that seller's settings."""

    tenant: Tenant
    lines: list[cart.CartLine]
    items_total: Decimal
    tax_total: Decimal
    shipping_total: Decimal
    commission: Decimal


def price_shares(lines: list[cart.CartLine], shipping_method: str) -> list[Share]:
    by_tenant: dict[uuid.UUID, list[cart.CartLine]] = defaultdict(list)
    for line in lines:
        by_tenant[line.tenant.id].append(line)
    shares = []
    for tenant_lines in by_tenant.values():
        tenant = tenant_lines[0].tenant
        items_total = sum(
            (line.item.unit_price * line.item.quantity for line in tenant_lines), Decimal("0.00")
        )
        shares.append(
            Share(
                tenant,
                tenant_lines,
                items_total,
                cents(items_total * tenant.tax_rate),
                shipping_cost(tenant, shipping_method, items_total),
                cents(items_total * tenant.commission_rate),
            )
        )
    return shares


def _claim_key(
    session: Session,
    buyer_id: uuid.UUID,
    key: str,
    request: CheckoutRequest,
    currency: str,
    shares: list[Share],
) -> uuid.UUID | None:
    """Insert the order row; None when a concurrent request with the same key got there first."""
    items, tax, shipping = (
        sum((getattr(share, part) for share in shares), Decimal("0.00"))
        for part in ("items_total", "tax_total", "shipping_total")
    )
    return session.execute(
        insert(Order)
        .values(
            id=uuid.uuid4(),
            buyer_id=buyer_id,
            idempotency_key=key,
            status=S.PAYMENT_PENDING,
            currency=currency,
            items_total=items,
            tax_total=tax,
            shipping_total=shipping,
            grand_total=items + tax + shipping,
            shipping_address=request.shipping_address,
            shipping_method=request.shipping_method,
            payment_method=request.payment_method.value,
        )
        .on_conflict_do_nothing(index_elements=[Order.buyer_id, Order.idempotency_key])
        .returning(Order.id)
    ).scalar()


def _create_shares(session: Session, order: Order, shares: list[Share]) -> None:
    sub_orders = [
        SubOrder(
            id=uuid.uuid4(),
            order_id=order.id,
            tenant_id=share.tenant.id,
            buyer_id=order.buyer_id,
            status=S.PAYMENT_PENDING,
            items_total=share.items_total,
            tax_total=share.tax_total,
            shipping_total=share.shipping_total,
            commission=share.commission,
        )
        for share in shares
    ]
    session.add_all(sub_orders)
    session.flush()  # the rows below refer to the sub-orders
    for sub_order, share in zip(sub_orders, shares, strict=True):
        orders.record_change(session, sub_order, None, order.buyer_id)
        session.add_all(
            OrderItem(
                order_id=order.id,
                sub_order_id=sub_order.id,
                tenant_id=share.tenant.id,
                buyer_id=order.buyer_id,
                product_id=line.product.id,
                sku_id=line.sku.id,
                quantity=line.item.quantity,
                unit_price=line.item.unit_price,
            )
            for line in share.lines
        )
    session.flush()


def _open_payment(
    session: Session, order: Order, method: PaymentMethod, provider: PaymentProvider, attempt: int
) -> PendingPayment:
    payment = Payment(
        id=uuid.uuid4(),
        order_id=order.id,
        buyer_id=order.buyer_id,
        attempt=attempt,
        provider=provider.name,
        method=method.value,
        status=PaymentStatus.pending,
        amount=order.grand_total,
        refunded_amount=Decimal("0.00"),
        currency=order.currency,
    )
    session.add(payment)
    session.flush()
    return PendingPayment(order.id, payment.id, payment.amount, payment.currency, method)


def place_order(
    buyer_id: uuid.UUID, key: str, request: CheckoutRequest, provider: PaymentProvider
) -> PendingPayment | CheckoutResult:
    """Step 1: the order with its reserved stock and an open payment attempt (or the order an
    earlier request with this key placed)."""
    with session_scope(_buyer(buyer_id)) as session:
        existing = _existing_order(session, buyer_id, key, request)
        if existing is not None:
            return CheckoutResult(existing.id, replayed=True)
        lines = _checked_lines(session, buyer_id)
        shares = price_shares(lines, request.shipping_method)
        order_id = _claim_key(session, buyer_id, key, request, lines[0].sku.currency, shares)
        if order_id is None:
            return CheckoutResult(_existing_order(session, buyer_id, key, request).id, replayed=True)
        order = session.get(Order, order_id)
        _create_shares(session, order, shares)
        needs = Counter({line.sku.id: line.item.quantity for line in lines})
        with acting_as(session, PLATFORM):
            inventory.reserve(session, needs, order_id=order.id)
        cart.remove_items(session, [line.item.id for line in lines])
        return _open_payment(session, order, request.payment_method, provider, attempt=1)


def _charge(provider: PaymentProvider, pending: PendingPayment, token: str) -> tuple[ProviderOutcome, bool]:
    """Authorize then capture; (the outcome to record, whether money was captured)."""
    authorization = provider.authorize(
        idempotency_key=str(pending.payment_id),
        amount=pending.amount,
        currency=pending.currency,
        method=pending.method,
        token=token,
    )
    if not authorization.succeeded:
        return authorization, False
    capture = provider.capture(authorization=authorization.reference, amount=pending.amount)
    if not capture.succeeded:
        provider.void(authorization=authorization.reference)
        return ProviderOutcome(False, authorization.reference, capture.failure_reason), False
    return authorization, True


def _needs(session: Session, order_id: uuid.UUID) -> Counter[uuid.UUID]:
    needs: Counter[uuid.UUID] = Counter()
    for sku_id, quantity in session.execute(
        select(OrderItem.sku_id, OrderItem.quantity).where(OrderItem.order_id == order_id)
    ):
        needs[sku_id] += quantity
    return needs


def _refund_all(session: Session, provider: PaymentProvider, order: Order) -> None:
    for sub_order in orders.lock_sub_orders(session, order.id):
        refund_sub_order(session, provider, sub_order)


def settle(
    session: Session,
    provider: PaymentProvider,
    payment_id: uuid.UUID,
    outcome: ProviderOutcome,
    captured: bool,
) -> None:
    """Record a payment attempt's outcome (as the platform); a settled attempt is left alone."""
    order = session.scalar(
        select(Order)
        .where(Order.id == select(Payment.order_id).where(Payment.id == payment_id).scalar_subquery())
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(f"payment {payment_id} not found", field="payment_id")
    payment = session.scalar(
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if payment.status != PaymentStatus.pending:
        return
    payment.provider_reference = outcome.reference
    if not captured:
        payment.status, payment.failure_reason = PaymentStatus.failed, outcome.failure_reason
        if order.status == S.PAYMENT_PENDING:
            inventory.release_reservations(session, order.id)
            orders.move_whole_order(
                session, order, S.PAYMENT_FAILED, reason=f"payment failed: {outcome.failure_reason}"
            )
        return
    payment.status = PaymentStatus.captured
    session.flush()
    if order.status != S.PAYMENT_PENDING:  # cancelled while the provider was charging
        _refund_all(session, provider, order)
        return
    missing = inventory.shortfall(session, order.id, _needs(session, order.id))
    try:
        if missing:  # reservations expired while the provider was charging
            with session.begin_nested():
                inventory.reserve(session, missing, order_id=order.id)
    except inventory.InsufficientStock:
        _refund_all(session, provider, order)
        inventory.release_reservations(session, order.id)
        orders.move_whole_order(
            session,
            order,
            S.CANCELLED,
            reason="stock ran out before the payment completed; the payment was refunded",
        )
        return
    inventory.commit_reservations(session, order.id)
    orders.move_whole_order(session, order, S.PAID)


def _collect(provider: PaymentProvider, pending: PendingPayment, token: str) -> None:
    outcome, captured = _charge(provider, pending, token)

    def settle_as_platform() -> None:
        with session_scope(PLATFORM) as session:
            settle(session, provider, pending.payment_id, outcome, captured)

    _retrying(settle_as_platform)


def checkout(
    provider: PaymentProvider, *, buyer_id: uuid.UUID, idempotency_key: str, request: CheckoutRequest
) -> CheckoutResult:
    """Place an order from the buyer's cart and pay for it; the same key always gives the same order."""
    placed = _retrying(lambda: place_order(buyer_id, idempotency_key, request, provider))
    if isinstance(placed, CheckoutResult):
        return placed
    _collect(provider, placed, request.payment_token)
    return CheckoutResult(placed.order_id, replayed=False)


def _reopen(
    buyer_id: uuid.UUID, order_id: uuid.UUID, method: PaymentMethod, provider: PaymentProvider
) -> PendingPayment:
    with session_scope(_buyer(buyer_id)) as session:
        order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
        if order is None:
            raise NotFound(f"order {order_id} not found", field="order_id")
        if order.status != S.PAYMENT_FAILED:
            raise Conflict(
                f"only an order whose payment failed takes a new payment; this one is {order.status.value}",
                field="status",
                current_status=order.status.value,
            )
        with acting_as(session, PLATFORM):
            inventory.ensure_reserved(session, order.id, _needs(session, order.id))
            orders.move_whole_order(session, order, S.PAYMENT_PENDING, actor_user_id=buyer_id)
        order.payment_method = method.value
        return _open_payment(session, order, method, provider, next_attempt(session, order.id))


def retry_payment(
    provider: PaymentProvider, *, buyer_id: uuid.UUID, order_id: uuid.UUID, method: PaymentMethod, token: str
) -> None:
    """Pay again for an order whose payment failed, reserving its stock again where it was released."""
    pending = _retrying(lambda: _reopen(buyer_id, order_id, method, provider))
    _collect(provider, pending, token)


def apply_webhook(session: Session, provider: PaymentProvider, event: dict[str, Any]) -> str:
    """Act on a verified provider event (platform scope); returns what was done."""
    data = event.get("data")
    if event["type"] in ("payment.captured", "payment.failed"):
        try:
            payment_id = uuid.UUID(str(data["merchant_reference"]))
            reference = str(data["reference"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Unprocessable(
                "a payment event needs data.merchant_reference and data.reference", field="data"
            ) from exc
        captured = event["type"] == "payment.captured"
        reason = data.get("reason")
        settle(session, provider, payment_id, ProviderOutcome(captured, reference, reason), captured)
        return "settled"
    return "ignored"
