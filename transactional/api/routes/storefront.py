"""Shopper browsing across every active store (anyone may call; shopper scope)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from transactional.api.deps import StorefrontSessionDep
from transactional.models import Product
from transactional.services import storefront
from transactional.services.storefront import BrowseFilters, StorefrontSort

router = APIRouter(prefix="/v1/storefront", tags=["storefront"])

PriceBound = Annotated[Decimal | None, Query(ge=0, max_digits=14, decimal_places=2)]


class ProductCard(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    store_name: str
    title: str
    brand: str | None
    category_id: uuid.UUID | None
    price: Decimal = Field(description="the lowest price among the product's active SKUs")
    currency: str | None
    rating_avg: Decimal | None
    rating_count: int
    images: list[dict[str, Any]]
    created_at: datetime


class StorefrontPage(BaseModel):
    items: list[ProductCard]
    next_cursor: str | None = Field(description="pass as `cursor` (with the same sort) for the next page")


class StorefrontSku(BaseModel):
    id: uuid.UUID
    sku_code: str
    price: Decimal
    currency: str
    attributes: dict[str, Any]


class StorefrontProduct(ProductCard):
    description: str
    attributes: dict[str, Any]
    skus: list[StorefrontSku]


def _card(product: Product, store_name: str, currency: str | None) -> dict[str, Any]:
    return {
        "id": product.id,
        "tenant_id": product.tenant_id,
        "store_name": store_name,
        "title": product.title,
        "brand": product.brand,
        "category_id": product.category_id,
        "price": product.min_price,
        "currency": currency,
        "rating_avg": product.rating_avg,
        "rating_count": product.rating_count,
        "images": product.images,
        "created_at": product.created_at,
    }


@router.get(
    "/products",
    response_model=StorefrontPage,
    summary="Browse products of all active stores",
    description=(
        "Active products of active stores that have an active SKU. Filters combine with AND: `category`"
        " (id or slug path) includes its descendant categories; `min_price`/`max_price` bound the lowest"
        " SKU price; `attr=key:value` (repeatable) matches the product's or an active SKU's attribute, and"
        " several values for one key match any of them; `brand` ignores case. Pages follow an opaque"
        " keyset cursor, stable while products are added."
    ),
)
def browse(
    session: StorefrontSessionDep,
    category: Annotated[str | None, Query(max_length=255, description="category id or slug path")] = None,
    min_price: PriceBound = None,
    max_price: PriceBound = None,
    brand: Annotated[str | None, Query(max_length=120)] = None,
    tenant_id: uuid.UUID | None = None,
    attr: Annotated[list[str], Query(max_length=20, description="attribute filter key:value")] = [],  # noqa: B006
    sort: StorefrontSort = StorefrontSort.newest,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
) -> StorefrontPage:
    filters = BrowseFilters(
        category=category,
        min_price=min_price,
        max_price=max_price,
        brand=brand,
        tenant_id=tenant_id,
        attributes=storefront.parse_attribute_filters(attr),
    )
    rows, next_cursor = storefront.browse_products(session, filters, sort, cursor, limit)
    return StorefrontPage(
        items=[ProductCard.model_validate(_card(*row)) for row in rows], next_cursor=next_cursor
    )


@router.get("/products/{product_id}", response_model=StorefrontProduct, summary="A product with its SKUs")
def product_detail(product_id: uuid.UUID, session: StorefrontSessionDep) -> StorefrontProduct:
    product, store_name, currency, skus = storefront.storefront_product(session, product_id)
    return StorefrontProduct.model_validate(
        {
            **_card(product, store_name, currency),
            "description": product.description,
            "attributes": product.attributes,
            "skus": [StorefrontSku.model_validate(sku, from_attributes=True) for sku in skus],
        }
    )
