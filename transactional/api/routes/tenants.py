from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AnyHttpUrl, BaseModel, EmailStr, Field
from sqlalchemy import select

from transactional.api.deps import AnySeller, CurrentTenant, PlatformAdmin, PlatformSessionDep, SellerAdmin, SessionDep
from transactional.models import AuditLog, Plan, Tenant, TenantStatus
from transactional.services import tenancy
from transactional.services.kyc import get_kyc_provider

router = APIRouter(prefix="/v1", tags=["tenants"])

Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


class Branding(BaseModel):
    logo_url: AnyHttpUrl | None = None
    primary_colour: Colour | None = None
    secondary_colour: Colour | None = None


class Shipping(BaseModel):
    methods: list[Annotated[str, Field(pattern=r"^(standard|express|pickup)$")]] = ["standard"]
    free_shipping_over: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    flat_rate: Decimal = Field(Decimal("5.00"), ge=0, max_digits=12, decimal_places=2)
    ships_from_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")


class TenantRegisterIn(BaseModel):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    legal_name: str = Field(min_length=2, max_length=200)
    store_name: str = Field(min_length=2, max_length=200)
    admin_email: EmailStr
    admin_password: str = Field(min_length=8, max_length=128)
    admin_name: str | None = Field(None, max_length=200)
    plan: Plan = Plan.free


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    legal_name: str
    store_name: str
    status: TenantStatus
    kyc_status: str
    kyc_reason: str | None
    plan: Plan
    branding: dict
    tax_rate: Decimal
    shipping: dict
    rate_limit_per_minute: int
    created_at: datetime


class TenantRegisteredOut(BaseModel):
    tenant: TenantOut
    admin_user_id: uuid.UUID


class KycIn(BaseModel):
    tax_id: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9-]+$")
    documents: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=500)]] = Field(
        description="document kind -> reference (e.g. identity, business_registration)"
    )


class TenantConfigIn(BaseModel):
    store_name: str | None = Field(None, min_length=2, max_length=200)
    branding: Branding | None = None
    tax_rate: Decimal | None = Field(None, ge=0, le=1, max_digits=5, decimal_places=4)
    shipping: Shipping | None = None
    plan: Plan | None = None


class AuditEntryOut(BaseModel):
    id: int
    tenant_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    actor_scope: str | None
    action: str
    entity_type: str
    entity_id: str
    changes: dict
    occurred_at: datetime


def tenant_out(tenant: Tenant) -> TenantOut:
    return TenantOut(
        id=tenant.id, slug=tenant.slug, legal_name=tenant.legal_name, store_name=tenant.store_name,
        status=tenant.status, kyc_status=tenant.kyc_status, kyc_reason=tenant.kyc_reason, plan=tenant.plan, branding=tenant.branding,
        tax_rate=tenant.tax_rate, shipping=tenant.shipping,
        rate_limit_per_minute=tenancy.PLAN_RATE_LIMITS[tenant.plan], created_at=tenant.created_at,
    )


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantRegisteredOut,
             summary="Register a seller (starts pending until KYC passes)")
def register_tenant(body: TenantRegisterIn, session: PlatformSessionDep) -> TenantRegisteredOut:
    tenant, admin = tenancy.register_tenant(session, **body.model_dump())
    return TenantRegisteredOut(tenant=tenant_out(tenant), admin_user_id=admin.id)


@router.get("/tenant", response_model=TenantOut, dependencies=[AnySeller], summary="The caller's store")
def my_tenant(tenant: CurrentTenant) -> TenantOut:
    return tenant_out(tenant)


@router.patch("/tenant", response_model=TenantOut, dependencies=[SellerAdmin], summary="Configure the store")
def configure_tenant(body: TenantConfigIn, tenant: CurrentTenant, session: SessionDep) -> TenantOut:
    changes = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    return tenant_out(tenancy.update_config(session, tenant, changes))


@router.post("/tenant/kyc", response_model=TenantOut, dependencies=[SellerAdmin], summary="Submit KYC documents")
def submit_kyc(body: KycIn, tenant: CurrentTenant, session: SessionDep) -> TenantOut:
    return tenant_out(tenancy.submit_kyc(session, tenant, get_kyc_provider(), tax_id=body.tax_id,
                                         documents=body.documents))


@router.get("/tenant/audit-log", response_model=list[AuditEntryOut], dependencies=[SellerAdmin])
def tenant_audit_log(tenant: CurrentTenant, session: SessionDep,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AuditEntryOut]:
    rows = session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(limit))
    return [AuditEntryOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/admin/tenants", response_model=list[TenantOut], dependencies=[PlatformAdmin])
def list_tenants(session: SessionDep, status_filter: Annotated[TenantStatus | None, Query(alias="status")] = None):
    return [tenant_out(t) for t in tenancy.list_tenants(session, status_filter)]


@router.post("/admin/tenants/{tenant_id}/suspend", response_model=TenantOut, dependencies=[PlatformAdmin])
def suspend(tenant_id: uuid.UUID, session: SessionDep) -> TenantOut:
    return tenant_out(tenancy.set_suspended(session, tenancy.get_tenant(session, tenant_id), True))


@router.post("/admin/tenants/{tenant_id}/reactivate", response_model=TenantOut, dependencies=[PlatformAdmin])
def reactivate(tenant_id: uuid.UUID, session: SessionDep) -> TenantOut:
    return tenant_out(tenancy.set_suspended(session, tenancy.get_tenant(session, tenant_id), False))


@router.get("/admin/audit-log", response_model=list[AuditEntryOut], dependencies=[PlatformAdmin])
def platform_audit_log(session: SessionDep, tenant_id: uuid.UUID | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AuditEntryOut]:
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(AuditLog.tenant_id == tenant_id)
    return [AuditEntryOut.model_validate(row, from_attributes=True) for row in session.scalars(query)]
