"""Shopper browsing across every active store, with opaque keyset cursors.

A page is the rows after the cursor's (sort key, id) in a total order, so inserts and deletes
between requests never repeat or skip a product that stays listed (offset paging would). The
storefront orders read the partial indexes of migration 0003.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session

from transactional.errors import BadRequest, NotFound
from transactional.models import Product, ProductStatus, Sku, Tenant, TenantStatus
from transactional.services.catalog import descendant_category_ids, find_category


class StorefrontSort(StrEnum):
    newest = "newest"
    price_asc = "price_asc"
    price_desc = "price_desc"
    rating = "rating"


@dataclass(frozen=True)
class _Order:
    key: Any
    descending: bool
    parse: Any  # cursor text -> key value


_ORDERS = {
    StorefrontSort.newest: _Order(Product.created_at, True, datetime.fromisoformat),
    StorefrontSort.price_asc: _Order(Product.min_price, False, Decimal),
    StorefrontSort.price_desc: _Order(Product.min_price, True, Decimal),
    StorefrontSort.rating: _Order(func.coalesce(Product.rating_avg, 0), True, Decimal),
}


def encode_cursor(sort: str, key: Any, product_id: uuid.UUID) -> str:
    raw = json.dumps([sort, key.isoformat() if isinstance(key, datetime) else str(key), str(product_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, parse) -> tuple[Any, uuid.UUID]:
    """The (key, id) a cursor points after; 400 naming `cursor` if it is not one of ours for `sort`."""
    try:
        cursor_sort, key, product_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if cursor_sort != sort:
            raise ValueError("cursor of another sort order")
        return parse(key), uuid.UUID(product_id)
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is malformed or belongs to another sort order", field="cursor") from exc


def keyset_page(
    session: Session, query: Select, order: _Order, sort: str, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One page of `query` (whose first column is a Product) in `order`, and the next page's cursor."""
    direction = (lambda column: column.desc()) if order.descending else (lambda column: column.asc())
    if cursor:
        key, after_id = decode_cursor(cursor, sort, order.parse)
        position = tuple_(order.key, Product.id)
        query = query.where(
            position < tuple_(key, after_id) if order.descending else position > tuple_(key, after_id)
        )
    rows = session.execute(
        query.add_columns(order.key).order_by(direction(order.key), direction(Product.id)).limit(limit + 1)
    ).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(sort, last[-1], last[0].id)
    return [row[:-1] for row in rows], next_cursor


@dataclass(frozen=True)
class BrowseFilters:
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    brand: str | None = None
    tenant_id: uuid.UUID | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)


def parse_attribute_filters(values: list[str]) -> dict[str, list[str]]:
    """`color:red` filters -> {"color": ["red", ...]}; 400 naming `attr` when one has no key."""
    wanted: dict[str, list[str]] = {}
    for value in values:
        key, separator, wanted_value = value.partition(":")
        if not separator or not key.strip():
            raise BadRequest(f"attribute filter {value!r} is not key:value", field="attr")
        wanted.setdefault(key.strip(), []).append(wanted_value.strip())
    return wanted


def _browsable() -> Select:
    currency = (
        select(Sku.currency)
        .where(Sku.product_id == Product.id, Sku.is_active)
        .limit(1)
        .scalar_subquery()
        .label("currency")
    )
    return (
        select(Product, Tenant.store_name, currency)
        .join(Tenant, Tenant.id == Product.tenant_id)
        .where(
            Tenant.status == TenantStatus.active,
            Product.status == ProductStatus.active,
            Product.deleted_at.is_(None),
            Product.min_price.is_not(None),
        )
    )


def _attribute_matches(key: str, values: list[str]):
    """The product or one of its active SKUs has one of `values` for `key` (compared as text)."""
    on_sku = exists().where(
        Sku.product_id == Product.id, Sku.is_active, Sku.attributes[key].astext.in_(values)
    )
    return or_(Product.attributes[key].astext.in_(values), on_sku)


def browse_products(
    session: Session, filters: BrowseFilters, sort: StorefrontSort, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Rows of (Product, store name, currency) for shoppers, and the next page's cursor.
    Filters combine with AND; several values for one attribute match any of them."""
    query = _browsable()
    if filters.category is not None:
        query = query.where(
            Product.category_id.in_(
                descendant_category_ids(session, find_category(session, filters.category))
            )
        )
    if filters.min_price is not None:
        query = query.where(Product.min_price >= filters.min_price)
    if filters.max_price is not None:
        query = query.where(Product.min_price <= filters.max_price)
    if filters.brand is not None:
        query = query.where(func.lower(Product.brand) == filters.brand.lower())
    if filters.tenant_id is not None:
        query = query.where(Product.tenant_id == filters.tenant_id)
    if filters.attributes:
        query = query.where(
            and_(*(_attribute_matches(key, values) for key, values in filters.attributes.items()))
        )
    return keyset_page(session, query, _ORDERS[sort], sort.value, cursor, limit)


def storefront_product(session: Session, product_id: uuid.UUID) -> tuple[Product, str, str | None, list[Sku]]:
    """A browsable product with its store name, currency and active SKUs; 404 otherwise."""
    row = session.execute(_browsable().where(Product.id == product_id)).one_or_none()
    if row is None:
        raise NotFound(f"product {product_id} not found", field="product_id")
    skus = session.scalars(
        select(Sku).where(Sku.product_id == product_id, Sku.is_active).order_by(Sku.price, Sku.sku_code)
    )
    return row[0], row[1], row[2], list(skus)


SELLER_ORDER = _ORDERS[StorefrontSort.newest]


def seller_products(
    session: Session, status: ProductStatus | None, cursor: str | None, limit: int
) -> tuple[list[Product], str | None]:
    """The caller's store's live products, newest first (RLS limits them to the tenant)."""
    query = select(Product).where(Product.deleted_at.is_(None))
    if status is not None:
        query = query.where(Product.status == status)
    rows, next_cursor = keyset_page(session, query, SELLER_ORDER, "seller", cursor, limit)
    return [row[0] for row in rows], next_cursor
