from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Enum, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from transactional.models.base import Base, created_at, tenant_fk, updated_at, uuid_pk


class TenantStatus(str, enum.Enum):
    pending = "pending"
    active = "active"
    suspended = "suspended"
    rejected = "rejected"


class Plan(str, enum.Enum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


class Role(str, enum.Enum):
    buyer = "buyer"
    seller_admin = "seller_admin"
    seller_staff = "seller_staff"
    platform_admin = "platform_admin"


def pg_enum(enum_cls: type[enum.Enum]) -> Enum:
    return Enum(enum_cls, name=enum_cls.__name__.lower(), values_callable=lambda e: [m.value for m in e])


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = uuid_pk()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[TenantStatus] = mapped_column(pg_enum(TenantStatus), default=TenantStatus.pending)
    kyc_status: Mapped[str] = mapped_column(String(32), default="not_started")
    kyc_reference: Mapped[str | None] = mapped_column(String(128))
    kyc_reason: Mapped[str | None] = mapped_column(String(200))
    plan: Mapped[Plan] = mapped_column(pg_enum(Plan), default=Plan.free)
    store_name: Mapped[str] = mapped_column(String(200))
    branding: Mapped[dict] = mapped_column(JSONB, default=dict)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0"))
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.10"))
    shipping: Mapped[dict] = mapped_column(JSONB, default=dict)
    external_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(pg_enum(Role))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    external_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class RefreshToken(Base):
    """Rotating refresh tokens: each use replaces the token; reuse of a replaced one revokes its family."""

    __tablename__ = "refresh_tokens"
    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    replaced_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = created_at()


class RevokedAccessToken(Base):
    """Access tokens revoked by logout before their (short) expiry."""

    __tablename__ = "revoked_access_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime]


class StaffInvitation(Base):
    __tablename__ = "staff_invitations"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)
    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    invited_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class AuditLog(Base):
    """Written by the database trigger that also writes the outbox (who changed what, when)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_user_id: Mapped[uuid.UUID | None]
    actor_scope: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    changes: Mapped[dict] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = created_at()
