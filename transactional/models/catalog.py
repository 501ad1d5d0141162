from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from transactional.models.base import Base, created_at, tenant_fk, updated_at, uuid_pk
from transactional.models.tenancy import pg_enum


class ProductStatus(str, enum.Enum):
    draft = "draft"
    active = "active"
    inactive = "inactive"


def tenant_fk_in_unique_key() -> Mapped[uuid.UUID]:
    """tenant_id of a table whose (tenant_id, ...) unique key already indexes it. A second index
    on tenant_id alone tempts the planner, when statistics are stale (right after a bulk load),
    into filtering a whole tenant for every looked-up key; migration 0003 drops it."""
    return mapped_column(ForeignKey("tenants.id"))


# A product shoppers can see, apart from its tenant's status.
BROWSABLE = "status = 'active' AND deleted_at IS NULL AND min_price IS NOT NULL"


class Category(Base):
    """Platform-wide category tree managed by platform admins (not tenant-owned)."""

    __tablename__ = "categories"
    id: Mapped[uuid.UUID] = uuid_pk()
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"), index=True)
    slug: Mapped[str] = mapped_column(String(255), unique=True)  # materialised path: "home/kitchen"
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_ref"),
        Index("ix_products_browse", "status", "category_id", "created_at"),
        # Storefront keyset orders over browsable products (migration 0003).
        Index("ix_products_storefront_price", "min_price", "id", postgresql_where=text(BROWSABLE)),
        Index("ix_products_storefront_newest", "created_at", "id", postgresql_where=text(BROWSABLE)),
        Index(
            "ix_products_storefront_rating",
            text("coalesce(rating_avg, 0)"),
            "id",
            postgresql_where=text(BROWSABLE),
        ),
    )
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk_in_unique_key()
    external_ref: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"), index=True)
    brand: Mapped[str | None] = mapped_column(String(120))
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict)
    images: Mapped[list] = mapped_column(JSONB, default=list)
    status: Mapped[ProductStatus] = mapped_column(pg_enum(ProductStatus), default=ProductStatus.draft)
    version: Mapped[int] = mapped_column(default=1)
    min_price: Mapped[Decimal | None]
    rating_avg: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    rating_count: Mapped[int] = mapped_column(default=0)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Sku(Base):
    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("tenant_id", "sku_code"), CheckConstraint("price >= 0", name="price"))
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk_in_unique_key()
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    sku_code: Mapped[str] = mapped_column(String(120))
    price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict)
    weight_grams: Mapped[int | None]
    low_stock_threshold: Mapped[int] = mapped_column(default=5)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ProductVersion(Base):
    """Snapshot of a product with its SKUs after every change: history and rollback."""

    __tablename__ = "product_versions"
    __table_args__ = (UniqueConstraint("product_id", "version"),)
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    version: Mapped[int]
    snapshot: Mapped[dict] = mapped_column(JSONB)
    changed_by: Mapped[uuid.UUID | None]
    change_reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
