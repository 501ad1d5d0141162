"""Checkout: the buyer's cart becomes an order, paid in the same call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, Field

from transactional.api.routes.orders import OrderOut, PaymentIn, ProviderDep, SagaBuyer, read_order
from transactional.services import checkout as checkout_service

router = APIRouter(prefix="/v1", tags=["checkout"])


class AddressIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    phone: str | None = Field(None, pattern=r"^\+?[0-9 ()-]{7,20}$")


class CheckoutIn(BaseModel):
    shipping_address: AddressIn
    shipping_method: Literal["standard", "express", "pickup"]
    payment: PaymentIn


@router.post(
    "/checkout",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    summary="Place and pay for an order from the cart",
    description=(
        "Requires an Idempotency-Key: repeating it returns the same order (200, Idempotent-Replayed). "
        "409 when stock ran out or prices changed since the items were added (the new prices are in "
        "price_changes). A declined payment still creates the order, as PAYMENT_FAILED with the reason; "
        "pay again with POST /v1/orders/{id}/payments."
    ),
    responses={
        200: {"description": "replay of an earlier checkout with this key"},
        409: {"description": "out of stock, or prices changed"},
    },
)
def checkout(
    body: CheckoutIn,
    principal: SagaBuyer,
    provider: ProviderDep,
    response: Response,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128)],
) -> OrderOut:
    request = checkout_service.CheckoutRequest(
        shipping_address=body.shipping_address.model_dump(mode="json", exclude_none=True),
        shipping_method=body.shipping_method,
        payment_method=body.payment.method,
        payment_token=body.payment.token,
    )
    result = checkout_service.checkout(
        provider, buyer_id=principal.user_id, idempotency_key=idempotency_key, request=request
    )
    if result.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return read_order(principal.user_id, result.order_id)
