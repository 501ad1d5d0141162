"""The buyer's server-side cart: one per buyer (so it follows them across devices), items from
any number of sellers, each with the price seen when it was added."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from transactional.errors import Conflict, NotFound
from transactional.models import Cart, CartItem, Product, ProductStatus, Sku, Tenant, TenantStatus

MAX_UNITS_PER_ITEM = 100


@dataclass(frozen=True)
class CartLine:
    item: CartItem
    sku: Sku
    product: Product
    tenant: Tenant

    @property
    def current_price(self) -> Decimal:
        return self.sku.price

    @property
    def purchasable(self) -> bool:
        return on_sale(self.sku, self.product, self.tenant)


def on_sale(sku: Sku, product: Product, tenant: Tenant) -> bool:
    return (
        sku.is_active
        and product.status == ProductStatus.active
        and product.deleted_at is None
        and tenant.status == TenantStatus.active
    )


def get_or_create_cart(session: Session, buyer_id: uuid.UUID) -> Cart:
    session.execute(
        insert(Cart)
        .values(id=uuid.uuid4(), buyer_id=buyer_id)
        .on_conflict_do_nothing(index_elements=[Cart.buyer_id])
    )
    return session.scalars(select(Cart).where(Cart.buyer_id == buyer_id)).one()


def lines(session: Session, buyer_id: uuid.UUID) -> list[CartLine]:
    rows = session.execute(
        select(CartItem, Sku, Product, Tenant)
        .join(Sku, Sku.id == CartItem.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .join(Tenant, Tenant.id == Sku.tenant_id)
        .where(CartItem.buyer_id == buyer_id)
        .order_by(CartItem.added_at, CartItem.id)
    )
    return [CartLine(*row) for row in rows]


def _purchasable_sku(session: Session, sku_id: uuid.UUID) -> Sku:
    row = session.execute(
        select(Sku, Product, Tenant)
        .join(Product, Product.id == Sku.product_id)
        .join(Tenant, Tenant.id == Sku.tenant_id)
        .where(Sku.id == sku_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"sku {sku_id} not found", field="sku_id")
    sku, product, tenant = row
    if not on_sale(sku, product, tenant):
        raise Conflict(f"sku {sku_id} is not on sale", field="sku_id")
    return sku


def add_item(session: Session, buyer_id: uuid.UUID, sku_id: uuid.UUID, quantity: int) -> None:
    """Add units (to an existing line too); the line's price is the price now."""
    sku = _purchasable_sku(session, sku_id)
    cart = get_or_create_cart(session, buyer_id)
    item = session.scalar(
        select(CartItem).where(CartItem.cart_id == cart.id, CartItem.sku_id == sku_id).with_for_update()
    )
    if item is None:
        item = CartItem(
            cart_id=cart.id, buyer_id=buyer_id, tenant_id=sku.tenant_id, sku_id=sku_id, quantity=0
        )
        session.add(item)
    _set_quantity(item, item.quantity + quantity)
    item.unit_price, item.currency = sku.price, sku.currency
    session.flush()


def _set_quantity(item: CartItem, quantity: int) -> None:
    if quantity > MAX_UNITS_PER_ITEM:
        raise Conflict(f"at most {MAX_UNITS_PER_ITEM} units of one sku per cart", field="quantity")
    item.quantity = quantity


def _item(session: Session, buyer_id: uuid.UUID, sku_id: uuid.UUID) -> CartItem:
    item = session.scalar(select(CartItem).where(CartItem.buyer_id == buyer_id, CartItem.sku_id == sku_id))
    if item is None:
        raise NotFound(f"sku {sku_id} is not in the cart", field="sku_id")
    return item


def set_quantity(session: Session, buyer_id: uuid.UUID, sku_id: uuid.UUID, quantity: int) -> None:
    _set_quantity(_item(session, buyer_id, sku_id), quantity)
    session.flush()


def remove_item(session: Session, buyer_id: uuid.UUID, sku_id: uuid.UUID) -> None:
    session.delete(_item(session, buyer_id, sku_id))
    session.flush()


def clear(session: Session, buyer_id: uuid.UUID) -> None:
    session.execute(delete(CartItem).where(CartItem.buyer_id == buyer_id))


def accept_current_prices(session: Session, buyer_id: uuid.UUID) -> None:
    """Take today's prices into the cart (after checkout answered that prices changed)."""
    for line in lines(session, buyer_id):
        line.item.unit_price, line.item.currency = line.sku.price, line.sku.currency
    session.flush()


def remove_items(session: Session, item_ids: list[uuid.UUID]) -> None:
    session.execute(delete(CartItem).where(CartItem.id.in_(item_ids)))
