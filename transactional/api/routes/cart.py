"""The buyer's cart (server-side, so it follows the buyer across devices)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from transactional.api.deps import Buyer, CurrentUser, SessionDep
from transactional.services import cart

router = APIRouter(prefix="/v1/cart", tags=["cart"], dependencies=[Buyer])

Quantity = Field(ge=1, le=cart.MAX_UNITS_PER_ITEM)


class CartItemIn(BaseModel):
    sku_id: uuid.UUID
    quantity: int = Quantity


class QuantityIn(BaseModel):
    quantity: int = Quantity


class CartLineOut(BaseModel):
    sku_id: uuid.UUID
    sku_code: str
    product_id: uuid.UUID
    title: str
    tenant_id: uuid.UUID
    store_name: str
    quantity: int
    unit_price: Decimal = Field(description="the price when the item was added; checkout charges it")
    current_price: Decimal
    currency: str
    price_changed: bool
    on_sale: bool


class CartOut(BaseModel):
    items: list[CartLineOut]
    totals: dict[str, Decimal] = Field(description="currency -> sum of quantity x unit_price")
    prices_changed: bool = Field(
        description="accept the current prices (POST /v1/cart/accept-prices) to check out"
    )


def cart_out(session: Session, buyer_id: uuid.UUID) -> CartOut:
    lines = cart.lines(session, buyer_id)
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    items = []
    for line in lines:
        totals[line.item.currency] += line.item.unit_price * line.item.quantity
        items.append(
            CartLineOut(
                sku_id=line.sku.id,
                sku_code=line.sku.sku_code,
                product_id=line.product.id,
                title=line.product.title,
                tenant_id=line.tenant.id,
                store_name=line.tenant.store_name,
                quantity=line.item.quantity,
                unit_price=line.item.unit_price,
                current_price=line.current_price,
                currency=line.item.currency,
                price_changed=line.item.unit_price != line.current_price,
                on_sale=line.purchasable,
            )
        )
    return CartOut(items=items, totals=dict(totals), prices_changed=any(item.price_changed for item in items))


@router.get("", response_model=CartOut, summary="The caller's cart")
def get_cart(principal: CurrentUser, session: SessionDep) -> CartOut:
    return cart_out(session, principal.user_id)


@router.post(
    "/items",
    status_code=status.HTTP_201_CREATED,
    response_model=CartOut,
    summary="Add units of a SKU at today's price",
)
def add_item(body: CartItemIn, principal: CurrentUser, session: SessionDep) -> CartOut:
    cart.add_item(session, principal.user_id, body.sku_id, body.quantity)
    return cart_out(session, principal.user_id)


@router.patch("/items/{sku_id}", response_model=CartOut, summary="Set the quantity of a line")
def set_quantity(sku_id: uuid.UUID, body: QuantityIn, principal: CurrentUser, session: SessionDep) -> CartOut:
    cart.set_quantity(session, principal.user_id, sku_id, body.quantity)
    return cart_out(session, principal.user_id)


@router.delete("/items/{sku_id}", response_model=CartOut, summary="Remove a line")
def remove_item(sku_id: uuid.UUID, principal: CurrentUser, session: SessionDep) -> CartOut:
    cart.remove_item(session, principal.user_id, sku_id)
    return cart_out(session, principal.user_id)


@router.post("/accept-prices", response_model=CartOut, summary="Take the current prices into the cart")
def accept_prices(principal: CurrentUser, session: SessionDep) -> CartOut:
    cart.accept_current_prices(session, principal.user_id)
    return cart_out(session, principal.user_id)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, summary="Empty the cart")
def clear_cart(principal: CurrentUser, session: SessionDep) -> Response:
    cart.clear(session, principal.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
