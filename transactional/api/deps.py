"""Request dependencies: who is calling, the RLS-scoped session, the seller's tenant, roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import structlog
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from transactional.db import ANONYMOUS_SHOPPER, PLATFORM, AccessContext, new_session
from transactional.errors import Forbidden, TooManyRequests, Unauthorized
from transactional.models import Role, Tenant, TenantStatus
from transactional.ratelimit import tenant_buckets
from transactional.services.auth import is_access_token_revoked
from transactional.services.security import Principal, decode_access_token
from transactional.services.tenancy import PLAN_RATE_LIMITS

bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login")
SELLER_ROLES = (Role.seller_admin, Role.seller_staff)


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal | None:
    """The caller, bound into the log context. Async on purpose: it runs in the request's own task,
    so the binding reaches later dependencies and the endpoint (sync ones run in threads on a copy
    of this context); `request.state` carries it to the access log written by the middleware."""
    if credentials is None:
        return None
    principal = decode_access_token(credentials.credentials)
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(**log_identity(principal))
    return principal


def log_identity(principal: Principal) -> dict[str, str | None]:
    return {"user_id": str(principal.user_id), "tenant_id": str(principal.tenant_id) if principal.tenant_id else None}


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]


def access_for(principal: Principal | None) -> AccessContext:
    if principal is None:
        return ANONYMOUS_SHOPPER
    if principal.role == Role.platform_admin:
        return AccessContext("platform", user_id=principal.user_id)
    if principal.role in SELLER_ROLES:
        return AccessContext("tenant", tenant_id=principal.tenant_id, user_id=principal.user_id)
    return AccessContext("shopper", user_id=principal.user_id)


def _session(access: AccessContext, principal: Principal | None) -> Iterator[Session]:
    session = new_session(access)
    try:
        with session.begin():
            if principal is not None and is_access_token_revoked(session, principal.jti):
                raise Unauthorized("this access token was revoked by logout", field="Authorization")
            yield session
    finally:
        session.close()


def get_session(principal: OptionalPrincipal) -> Iterator[Session]:
    """One transaction per request under the caller's RLS context; committed before responding."""
    yield from _session(access_for(principal), principal)


def get_platform_session(principal: OptionalPrincipal) -> Iterator[Session]:
    """Platform scope for identity flows (login, refresh) that run before anyone is known."""
    yield from _session(PLATFORM, principal)


def get_storefront_session(principal: OptionalPrincipal) -> Iterator[Session]:
    """Shopper scope whoever calls: storefront reads span every active tenant."""
    user_id = principal.user_id if principal else None
    yield from _session(AccessContext("shopper", user_id=user_id), principal)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
PlatformSessionDep = Annotated[Session, Depends(get_platform_session, scope="function")]
StorefrontSessionDep = Annotated[Session, Depends(get_storefront_session, scope="function")]


def get_current_user(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise Unauthorized("authentication required", field="Authorization", headers={"WWW-Authenticate": "Bearer"})
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require_roles(*roles: Role):
    def check(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"role {principal.role.value} may not do this", field="role")
        return principal

    return Depends(check)


def get_current_tenant(principal: CurrentUser, session: SessionDep, response: Response) -> Tenant:
    """The calling seller's tenant: active (or pending, for setup) and within its plan's rate limit."""
    if principal.role not in SELLER_ROLES or principal.tenant_id is None:
        raise Forbidden("this endpoint is for sellers", field="role")
    tenant = session.get(Tenant, principal.tenant_id)
    if tenant is None or tenant.status in (TenantStatus.suspended, TenantStatus.rejected):
        raise Forbidden("this store is suspended or was rejected", field="tenant")
    decision = tenant_buckets.take(tenant.id, PLAN_RATE_LIMITS[tenant.plan])
    headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        raise TooManyRequests(
            f"rate limit of {decision.limit} requests/minute for the {tenant.plan.value} plan exceeded",
            field="tenant", headers={**headers, "Retry-After": str(decision.retry_after)},
        )
    response.headers.update(headers)
    return tenant


CurrentTenant = Annotated[Tenant, Depends(get_current_tenant)]
SellerAdmin = require_roles(Role.seller_admin)
AnySeller = require_roles(Role.seller_admin, Role.seller_staff)
PlatformAdmin = require_roles(Role.platform_admin)
Buyer = require_roles(Role.buyer)
