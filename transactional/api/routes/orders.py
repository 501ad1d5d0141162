"""Orders: the buyer's combined orders (cancel, return, pay again) and each seller's share."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field

from transactional.api.deps import AnySeller, Buyer, CurrentTenant, CurrentUser, SessionDep
from transactional.db import AccessContext, session_scope
from transactional.errors import Unauthorized
from transactional.models import OrderStatus
from transactional.services import checkout, orders
from transactional.services.auth import is_access_token_revoked
from transactional.services.payments import PaymentMethod, PaymentProvider, get_payment_provider
from transactional.services.security import Principal

router = APIRouter(prefix="/v1", tags=["orders"])

ProviderDep = Annotated[PaymentProvider, Depends(get_payment_provider)]
Page = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0)]


def get_saga_buyer(principal: Annotated[Principal, Buyer]) -> Principal:
    """For endpoints that run several transactions of their own (checkout, payment): the buyer is
    checked in a short transaction instead of holding a request-long one."""
    with session_scope(AccessContext("shopper", user_id=principal.user_id)) as session:
        if is_access_token_revoked(session, principal.jti):
            raise Unauthorized("this access token was revoked by logout", field="Authorization")
    return principal


SagaBuyer = Annotated[Principal, Depends(get_saga_buyer)]


class PaymentIn(BaseModel):
    method: PaymentMethod
    token: str = Field(
        min_length=1,
        max_length=200,
        description="the provider's token for the card, UPI address, bank or wallet",
    )


class OrderItemOut(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    sku_id: uuid.UUID
    quantity: int
    unit_price: Decimal


class StatusChangeOut(BaseModel):
    from_status: str | None
    to_status: str
    actor_user_id: uuid.UUID | None
    changed_at: datetime


class SubOrderOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    status: OrderStatus
    items_total: Decimal
    tax_total: Decimal
    shipping_total: Decimal
    items: list[OrderItemOut]
    history: list[StatusChangeOut]


class PaymentOut(BaseModel):
    id: uuid.UUID
    attempt: int
    method: str
    status: str
    amount: Decimal
    refunded_amount: Decimal
    currency: str
    failure_reason: str | None
    created_at: datetime


class OrderOut(BaseModel):
    id: uuid.UUID
    status: OrderStatus
    failure_reason: str | None
    currency: str
    items_total: Decimal
    tax_total: Decimal
    shipping_total: Decimal
    grand_total: Decimal
    shipping_address: dict
    shipping_method: str
    payment_method: str
    placed_at: datetime
    sub_orders: list[SubOrderOut]
    payments: list[PaymentOut]


class SellerOrderOut(SubOrderOut):
    order_id: uuid.UUID
    commission: Decimal
    payout: Decimal = Field(description="items + tax + shipping - commission")
    shipping_address: dict
    shipping_method: str
    placed_at: datetime


class ReturnIn(BaseModel):
    sub_order_id: uuid.UUID = Field(description="the seller's share being returned")


class SellerMoveIn(BaseModel):
    status: Literal["PACKED", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED"]


def _share_fields(share: orders.SubOrderDetails) -> dict:
    sub_order = share.sub_order
    return {
        "id": sub_order.id,
        "tenant_id": sub_order.tenant_id,
        "status": sub_order.status,
        "items_total": sub_order.items_total,
        "tax_total": sub_order.tax_total,
        "shipping_total": sub_order.shipping_total,
        "items": [OrderItemOut.model_validate(item, from_attributes=True) for item in share.items],
        "history": [StatusChangeOut.model_validate(change, from_attributes=True) for change in share.history],
    }


def order_out(details: orders.OrderDetails) -> OrderOut:
    order = details.order
    return OrderOut(
        id=order.id,
        status=order.status,
        failure_reason=order.failure_reason,
        currency=order.currency,
        items_total=order.items_total,
        tax_total=order.tax_total,
        shipping_total=order.shipping_total,
        grand_total=order.grand_total,
        shipping_address=order.shipping_address,
        shipping_method=order.shipping_method,
        payment_method=order.payment_method,
        placed_at=order.placed_at,
        sub_orders=[SubOrderOut(**_share_fields(share)) for share in details.sub_orders],
        payments=[
            PaymentOut(
                id=p.id,
                attempt=p.attempt,
                method=p.method,
                status=p.status.value,
                amount=p.amount,
                refunded_amount=p.refunded_amount,
                currency=p.currency,
                failure_reason=p.failure_reason,
                created_at=p.created_at,
            )
            for p in details.payments
        ],
    )


def seller_order_out(found: orders.SellerOrder) -> SellerOrderOut:
    sub_order = found.details.sub_order
    gross = sub_order.items_total + sub_order.tax_total + sub_order.shipping_total
    return SellerOrderOut(
        **_share_fields(found.details),
        order_id=found.order.id,
        commission=sub_order.commission,
        payout=gross - sub_order.commission,
        shipping_address=found.order.shipping_address,
        shipping_method=found.order.shipping_method,
        placed_at=found.order.placed_at,
    )


def read_order(buyer_id: uuid.UUID, order_id: uuid.UUID) -> OrderOut:
    with session_scope(AccessContext("shopper", user_id=buyer_id)) as session:
        return order_out(orders.buyer_order(session, order_id))


@router.get("/orders", response_model=list[OrderOut], dependencies=[Buyer], summary="The caller's orders")
def list_orders(session: SessionDep, limit: Page = 20, offset: Offset = 0) -> list[OrderOut]:
    return [order_out(details) for details in orders.buyer_orders(session, limit=limit, offset=offset)]


@router.get("/orders/{order_id}", response_model=OrderOut, dependencies=[Buyer])
def get_order(order_id: uuid.UUID, session: SessionDep) -> OrderOut:
    return order_out(orders.buyer_order(session, order_id))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    dependencies=[Buyer],
    summary="Cancel before shipping (a paid order is refunded)",
)
def cancel_order(
    order_id: uuid.UUID, principal: CurrentUser, session: SessionDep, provider: ProviderDep
) -> OrderOut:
    orders.cancel_order(session, provider, buyer_id=principal.user_id, order_id=order_id)
    return order_out(orders.buyer_order(session, order_id))


@router.post(
    "/orders/{order_id}/returns",
    response_model=OrderOut,
    dependencies=[Buyer],
    summary="Ask to return a delivered seller's share",
)
def request_return(
    order_id: uuid.UUID, body: ReturnIn, principal: CurrentUser, session: SessionDep, provider: ProviderDep
) -> OrderOut:
    orders.request_return(
        session,
        buyer_id=principal.user_id,
        order_id=order_id,
        sub_order_id=body.sub_order_id,
        provider=provider,
    )
    return order_out(orders.buyer_order(session, order_id))


@router.post(
    "/orders/{order_id}/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    summary="Pay again for an order whose payment failed",
)
def retry_payment(
    order_id: uuid.UUID, body: PaymentIn, principal: SagaBuyer, provider: ProviderDep
) -> OrderOut:
    checkout.retry_payment(
        provider, buyer_id=principal.user_id, order_id=order_id, method=body.method, token=body.token
    )
    return read_order(principal.user_id, order_id)


@router.get(
    "/tenant/orders",
    response_model=list[SellerOrderOut],
    dependencies=[AnySeller],
    summary="The store's shares of orders, newest first",
)
def list_seller_orders(
    tenant: CurrentTenant,
    session: SessionDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    limit: Page = 20,
    offset: Offset = 0,
) -> list[SellerOrderOut]:
    found = orders.seller_orders(session, status=status_filter, limit=limit, offset=offset)
    return [seller_order_out(share) for share in found]


@router.get("/tenant/orders/{sub_order_id}", response_model=SellerOrderOut, dependencies=[AnySeller])
def get_seller_order(sub_order_id: uuid.UUID, tenant: CurrentTenant, session: SessionDep) -> SellerOrderOut:
    return seller_order_out(orders.seller_order(session, sub_order_id))


@router.post(
    "/tenant/orders/{sub_order_id}/status",
    response_model=SellerOrderOut,
    dependencies=[AnySeller],
    summary="Move the store's share: PACKED, SHIPPED, DELIVERED, CANCELLED (refunds), REFUNDED",
)
def move_seller_order(
    sub_order_id: uuid.UUID,
    body: SellerMoveIn,
    tenant: CurrentTenant,
    principal: CurrentUser,
    session: SessionDep,
    provider: ProviderDep,
) -> SellerOrderOut:
    orders.seller_move(
        session,
        provider,
        sub_order_id=sub_order_id,
        to_status=OrderStatus(body.status),
        actor_user_id=principal.user_id,
    )
    return seller_order_out(orders.seller_order(session, sub_order_id))
