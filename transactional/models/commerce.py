from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from transactional.models.base import Base, created_at, tenant_fk, updated_at, uuid_pk
from transactional.models.tenancy import pg_enum


class OrderStatus(str, enum.Enum):
    PAYMENT_PENDING = "PAYMENT_PENDING"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAID = "PAID"
    PACKED = "PACKED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    REFUNDED = "REFUNDED"


class PaymentStatus(str, enum.Enum):
    pending = "pending"
    authorized = "authorized"
    captured = "captured"
    failed = "failed"
    refunded = "refunded"
    partially_refunded = "partially_refunded"


class Warehouse(Base):
    __tablename__ = "warehouses"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = created_at()


class InventoryLevel(Base):
    __tablename__ = "inventory_levels"
    __table_args__ = (
        UniqueConstraint("sku_id", "warehouse_id"),
        CheckConstraint("available >= 0", name="available_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
    )
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"), index=True)
    warehouse_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("warehouses.id"))
    available: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = updated_at()


class StockReservation(Base):
    __tablename__ = "stock_reservations"
    __table_args__ = (
        Index("ix_stock_reservations_active_expiry", "expires_at", postgresql_where="status = 'active'"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    inventory_level_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inventory_levels.id"), index=True)
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"), index=True)
    quantity: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | released | committed
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_at()


class StockAdjustment(Base):
    __tablename__ = "stock_adjustments"
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    inventory_level_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inventory_levels.id"), index=True)
    delta: Mapped[int]
    reason: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = created_at()


class Cart(Base):
    __tablename__ = "carts"
    id: Mapped[uuid.UUID] = uuid_pk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True)
    updated_at: Mapped[datetime] = updated_at()


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("cart_id", "sku_id"), CheckConstraint("quantity > 0", name="quantity"))
    id: Mapped[uuid.UUID] = uuid_pk()
    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    added_at: Mapped[datetime] = created_at()


class Order(Base):
    """The buyer's combined order; each seller's share is a SubOrder."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("buyer_id", "idempotency_key"),)
    id: Mapped[uuid.UUID] = uuid_pk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[OrderStatus] = mapped_column(pg_enum(OrderStatus), default=OrderStatus.PAYMENT_PENDING)
    currency: Mapped[str] = mapped_column(String(3))
    items_total: Mapped[Decimal]
    tax_total: Mapped[Decimal]
    shipping_total: Mapped[Decimal]
    grand_total: Mapped[Decimal]
    shipping_address: Mapped[dict] = mapped_column(JSONB)
    shipping_method: Mapped[str] = mapped_column(String(32))
    payment_method: Mapped[str] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    placed_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class SubOrder(Base):
    __tablename__ = "sub_orders"
    __table_args__ = (UniqueConstraint("order_id", "tenant_id"),)
    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[OrderStatus] = mapped_column(pg_enum(OrderStatus), default=OrderStatus.PAYMENT_PENDING)
    items_total: Mapped[Decimal]
    tax_total: Mapped[Decimal]
    shipping_total: Mapped[Decimal]
    commission: Mapped[Decimal]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    sub_order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sub_orders.id"), index=True)
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    sku_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    created_at: Mapped[datetime] = created_at()


class OrderStatusChange(Base):
    __tablename__ = "order_status_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    sub_order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sub_orders.id"), index=True)
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    actor_user_id: Mapped[uuid.UUID | None]
    changed_at: Mapped[datetime] = created_at()


class Payment(Base):
    """One payment attempt for an order; a failed attempt can be followed by a retry."""

    __tablename__ = "payments"
    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    attempt: Mapped[int] = mapped_column(SmallInteger, default=1)
    provider: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    status: Mapped[PaymentStatus] = mapped_column(pg_enum(PaymentStatus), default=PaymentStatus.pending)
    amount: Mapped[Decimal]
    refunded_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3))
    provider_reference: Mapped[str | None] = mapped_column(String(128), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Refund(Base):
    __tablename__ = "refunds"
    id: Mapped[uuid.UUID] = uuid_pk()
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    sub_order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sub_orders.id"), unique=True)
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[Decimal]
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="succeeded")
    created_at: Mapped[datetime] = created_at()


class PaymentWebhookEvent(Base):
    """Provider webhooks seen, by the provider's event id: a replayed webhook is a no-op."""

    __tablename__ = "payment_webhook_events"
    provider_event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = created_at()


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("buyer_id", "product_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    order_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_items.id"))
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    moderation_status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
