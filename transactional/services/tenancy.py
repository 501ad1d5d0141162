"""Tenant lifecycle: register (pending) -> KYC -> active; suspend / reactivate; configuration."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transactional.errors import Conflict, NotFound
from transactional.models import Plan, Role, Tenant, TenantStatus, User
from transactional.services.kyc import KycProvider
from transactional.services.security import hash_password

# Requests per minute a tenant's seller API may make, by plan (token-bucket refill rate).
PLAN_RATE_LIMITS = {Plan.free: 120, Plan.pro: 1200, Plan.enterprise: 12000}


def register_tenant(
    session: Session,
    *,
    slug: str,
    legal_name: str,
    store_name: str,
    admin_email: str,
    admin_password: str,
    admin_name: str | None = None,
    plan: Plan = Plan.free,
    external_ref: str | None = None,
    admin_password_hash: str | None = None,
) -> tuple[Tenant, User]:
    """Create a pending tenant and its first seller admin in one transaction.

    `admin_password_hash`, when given, is a hash of `admin_password` made earlier: bulk loaders
    hash one shared password once instead of paying argon2 for every tenant."""
    tenant = Tenant(
        slug=slug, legal_name=legal_name, store_name=store_name, plan=plan,
        status=TenantStatus.pending, external_ref=external_ref, branding={}, shipping={},
    )
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"tenant slug '{slug}' is taken", field="slug") from exc
    admin = User(
        email=admin_email.lower(), password_hash=admin_password_hash or hash_password(admin_password),
        full_name=admin_name,
        role=Role.seller_admin, tenant_id=tenant.id,
    )
    session.add(admin)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("a user with this email already exists", field="admin_email") from exc
    return tenant, admin


def get_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return tenant


def submit_kyc(
    session: Session, tenant: Tenant, provider: KycProvider, *, tax_id: str, documents: dict[str, str]
) -> Tenant:
    if tenant.status not in (TenantStatus.pending, TenantStatus.rejected):
        raise Conflict(f"KYC applies to pending tenants; this tenant is {tenant.status.value}", field="status")
    decision = provider.verify(tenant.legal_name, tax_id, documents)
    tenant.kyc_reference = decision.reference
    if decision.approved:
        tenant.kyc_status = "verified"
        tenant.kyc_reason = None
        tenant.status = TenantStatus.active
    else:
        tenant.kyc_status = "rejected"
        tenant.kyc_reason = decision.reason
        tenant.status = TenantStatus.rejected
    session.flush()
    return tenant


def set_suspended(session: Session, tenant: Tenant, suspended: bool) -> Tenant:
    if suspended and tenant.status != TenantStatus.active:
        raise Conflict(f"only active tenants can be suspended; this one is {tenant.status.value}", field="status")
    if not suspended and tenant.status != TenantStatus.suspended:
        raise Conflict(f"only suspended tenants can be reactivated; this one is {tenant.status.value}", field="status")
    tenant.status = TenantStatus.suspended if suspended else TenantStatus.active
    session.flush()
    return tenant


CONFIGURABLE = {"store_name", "branding", "tax_rate", "shipping", "plan"}


def update_config(session: Session, tenant: Tenant, changes: dict[str, Any]) -> Tenant:
    for key, value in changes.items():
        if key not in CONFIGURABLE:
            raise Conflict(f"{key} is not configurable", field=key)
        if key == "tax_rate":
            value = Decimal(str(value))
        setattr(tenant, key, value)
    session.flush()
    return tenant


def list_tenants(session: Session, status: TenantStatus | None = None) -> list[Tenant]:
    query = select(Tenant).order_by(Tenant.created_at)
    if status is not None:
        query = query.where(Tenant.status == status)
    return list(session.scalars(query))
