"""Dashboards: a seller's at /seller/dashboard, the marketplace's at /admin/dashboard (HTML pages
that sign in and draw Plotly charts), and the JSON documents they draw from."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import plotly
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse

from transactional.api.deps import SELLER_ROLES, CurrentUser, PlatformAdmin, SessionDep
from transactional.errors import Forbidden, NotFound
from transactional.models import Role
from transactional.services.dashboards import (
    Dashboard,
    DashboardFilters,
    build_platform_dashboard,
    build_seller_dashboard,
    stored_seller_dashboard,
)

router = APIRouter(tags=["dashboards"])
STATIC = Path(__file__).resolve().parents[1] / "static"
ASSETS = {
    "dashboard.js": STATIC / "dashboard.js",
    "dashboard.css": STATIC / "dashboard.css",
    "plotly.min.js": Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
}
Filters = Annotated[DashboardFilters, Query()]


@router.get("/v1/dashboards/sellers/{tenant_id}", response_model=Dashboard,
            summary="A seller's dashboard (the seller's own staff and platform admins)",
            responses={403: {"description": "the dashboard of another store"}})
def seller_dashboard(tenant_id: uuid.UUID, principal: CurrentUser, session: SessionDep, filters: Filters) -> Dashboard:
    """Without filters, the dashboard generated after the latest refresh of the marts; with a date
    range or a product, built from the marts for them."""
    own_store = principal.role in SELLER_ROLES and principal.tenant_id == tenant_id
    if not own_store and principal.role != Role.platform_admin:
        raise Forbidden("this dashboard belongs to another store", field="tenant_id")
    if filters.is_default and (stored := stored_seller_dashboard(session, tenant_id)) is not None:
        return stored
    return build_seller_dashboard(session, tenant_id, filters)


@router.get("/v1/dashboards/platform", response_model=Dashboard, dependencies=[PlatformAdmin],
            summary="The marketplace dashboard (platform admins)")
def platform_dashboard(session: SessionDep, filters: Filters) -> Dashboard:
    return build_platform_dashboard(session, filters)


def _page(audience: str) -> HTMLResponse:
    html = (STATIC / "dashboard.html").read_text().replace("{{audience}}", audience)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/seller/dashboard", include_in_schema=False)
def seller_page() -> HTMLResponse:
    return _page("seller")


@router.get("/admin/dashboard", include_in_schema=False)
def admin_page() -> HTMLResponse:
    return _page("platform")


@router.get("/dashboards/static/{name}", include_in_schema=False)
def static_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NotFound(f"no dashboard asset {name}", field="name")
    return FileResponse(ASSETS[name], headers={"Cache-Control": "public, max-age=3600"})
