"""Seller inventory: warehouses, stock levels per SKU and warehouse, adjustments.

The router's lifespan runs the background release of expired stock reservations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, status
from pydantic import BaseModel, Field, field_validator

from transactional.api.deps import AnySeller, CurrentTenant, CurrentUser, SellerAdmin, SessionDep
from transactional.config import get_settings
from transactional.services import inventory


@asynccontextmanager
async def release_expired_in_background(_app: FastAPI) -> AsyncIterator[None]:
    interval = max(1.0, min(30.0, get_settings().reservation_ttl_seconds / 4))
    task = asyncio.create_task(inventory.release_expired_periodically(interval))
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


router = APIRouter(prefix="/v1/inventory", tags=["inventory"], lifespan=release_expired_in_background)

Page = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


class WarehouseIn(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    address: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=200)]] = {}


class WarehouseOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    address: dict
    created_at: datetime


class LevelOut(BaseModel):
    id: uuid.UUID
    sku_id: uuid.UUID
    warehouse_id: uuid.UUID
    available: int
    reserved: int
    updated_at: datetime


class AdjustmentIn(BaseModel):
    sku_id: uuid.UUID
    warehouse_id: uuid.UUID
    delta: int = Field(
        ge=-1_000_000, le=1_000_000, description="units added (positive) or removed (negative)"
    )
    reason: str = Field(min_length=2, max_length=64, description="e.g. received, damaged, stock_count")

    @field_validator("delta")
    @classmethod
    def not_zero(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("an adjustment changes stock: give a non-zero delta")
        return delta


class AdjustmentOut(BaseModel):
    id: uuid.UUID
    sku_id: uuid.UUID
    warehouse_id: uuid.UUID
    delta: int
    reason: str
    actor_user_id: uuid.UUID | None
    created_at: datetime


@router.post(
    "/warehouses",
    status_code=status.HTTP_201_CREATED,
    response_model=WarehouseOut,
    dependencies=[SellerAdmin],
    summary="Add a warehouse",
)
def create_warehouse(body: WarehouseIn, tenant: CurrentTenant, session: SessionDep) -> WarehouseOut:
    warehouse = inventory.create_warehouse(session, tenant_id=tenant.id, **body.model_dump())
    return WarehouseOut.model_validate(warehouse, from_attributes=True)


@router.get("/warehouses", response_model=list[WarehouseOut], dependencies=[AnySeller])
def list_warehouses(tenant: CurrentTenant, session: SessionDep) -> list[WarehouseOut]:
    return [WarehouseOut.model_validate(w, from_attributes=True) for w in inventory.list_warehouses(session)]


@router.get(
    "/levels",
    response_model=list[LevelOut],
    dependencies=[AnySeller],
    summary="Stock per SKU and warehouse (low_stock: SKUs below their threshold)",
)
def list_levels(
    tenant: CurrentTenant,
    session: SessionDep,
    sku_id: uuid.UUID | None = None,
    warehouse_id: uuid.UUID | None = None,
    low_stock: bool = False,
    limit: Page = 100,
    offset: Offset = 0,
) -> list[LevelOut]:
    levels = inventory.list_levels(
        session,
        sku_id=sku_id,
        warehouse_id=warehouse_id,
        low_stock_only=low_stock,
        limit=limit,
        offset=offset,
    )
    return [LevelOut.model_validate(level, from_attributes=True) for level in levels]


@router.post(
    "/adjustments",
    status_code=status.HTTP_201_CREATED,
    response_model=LevelOut,
    dependencies=[AnySeller],
    summary="Add or remove stock, with a reason; answers the new level",
)
def adjust(
    body: AdjustmentIn, tenant: CurrentTenant, principal: CurrentUser, session: SessionDep
) -> LevelOut:
    level = inventory.adjust_stock(
        session, tenant_id=tenant.id, actor_user_id=principal.user_id, **body.model_dump()
    )
    return LevelOut.model_validate(level, from_attributes=True)


@router.get("/adjustments", response_model=list[AdjustmentOut], dependencies=[AnySeller])
def list_adjustments(
    tenant: CurrentTenant,
    session: SessionDep,
    sku_id: uuid.UUID | None = None,
    limit: Page = 100,
    offset: Offset = 0,
) -> list[AdjustmentOut]:
    return [
        AdjustmentOut(
            id=adjustment.id,
            sku_id=level.sku_id,
            warehouse_id=level.warehouse_id,
            delta=adjustment.delta,
            reason=adjustment.reason,
            actor_user_id=adjustment.actor_user_id,
            created_at=adjustment.created_at,
        )
        for adjustment, level in inventory.list_adjustments(
            session, sku_id=sku_id, limit=limit, offset=offset
        )
    ]
