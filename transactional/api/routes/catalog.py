"""A store's products and SKUs, managed by its sellers.

Seller admins and staff both create and edit products and SKUs and upload files; deleting a
product and rolling it back to an earlier version are for seller admins only, since both undo
other people's work. Every change creates a version (see GET .../versions).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile, status
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from transactional.api.deps import AnySeller, CurrentTenant, CurrentUser, SellerAdmin, SessionDep
from transactional.errors import PayloadTooLarge
from transactional.models import Product, ProductStatus, Sku
from transactional.services import bulk_upload, catalog, storefront
from transactional.services.catalog import (
    Attributes,
    Currency,
    Images,
    ImportResult,
    Price,
    ProductData,
    ProductRef,
    SkuData,
)

router = APIRouter(prefix="/v1/tenant/products", tags=["catalog"], dependencies=[AnySeller])


class SkuOut(BaseModel):
    id: uuid.UUID
    sku_code: str
    price: Decimal
    currency: str
    attributes: dict[str, Any]
    weight_grams: int | None
    low_stock_threshold: int
    is_active: bool


class ProductOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    external_ref: str | None
    title: str
    description: str
    category_id: uuid.UUID | None
    brand: str | None
    attributes: dict[str, Any]
    images: list[dict[str, Any]]
    status: ProductStatus
    version: int
    min_price: Decimal | None = Field(description="the lowest price among active SKUs")
    rating_avg: Decimal | None
    rating_count: int
    created_at: datetime
    updated_at: datetime
    skus: list[SkuOut]


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class ProductPatch(BaseModel):
    """Product fields to change (SKUs have their own endpoints); null clears an optional field."""

    external_ref: ProductRef | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)] = None
    description: Annotated[str, StringConstraints(max_length=20_000)] = None
    category_id: uuid.UUID | None = None
    brand: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    attributes: Attributes = None
    images: Images = None
    status: ProductStatus = None


class SkuPatch(BaseModel):
    price: Price = None
    currency: Currency = None
    attributes: Attributes = None
    weight_grams: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    low_stock_threshold: Annotated[int, Field(ge=0, le=1_000_000)] = None
    is_active: bool = None


class RollbackIn(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1, description="the version whose snapshot the product returns to")


class VersionOut(BaseModel):
    version: int
    change_reason: str
    changed_by: uuid.UUID | None
    created_at: datetime
    snapshot: ProductData


def product_out(session: Session, product_id: uuid.UUID) -> ProductOut:
    return products_out(session, [product_id])[0]


def products_out(session: Session, product_ids: list[uuid.UUID]) -> list[ProductOut]:
    # Writes go through set-based SQL, so reload rather than trust objects already in the session.
    products = {
        p.id: p
        for p in session.scalars(
            select(Product).where(Product.id.in_(product_ids)).execution_options(populate_existing=True)
        )
    }
    skus: dict[uuid.UUID, list[SkuOut]] = {product_id: [] for product_id in product_ids}
    for sku in session.scalars(
        select(Sku)
        .where(Sku.product_id.in_(product_ids))
        .order_by(Sku.sku_code)
        .execution_options(populate_existing=True)
    ):
        skus[sku.product_id].append(SkuOut.model_validate(sku, from_attributes=True))
    return [
        ProductOut.model_validate(
            {
                **{
                    column: getattr(products[pid], column)
                    for column in ProductOut.model_fields
                    if column != "skus"
                },
                "skus": skus[pid],
            }
        )
        for pid in product_ids
    ]


def _changes(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProductOut, summary="Create a product")
def create_product(
    body: ProductData, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> ProductOut:
    product_id = catalog.create_product(session, tenant_id=tenant.id, actor_user_id=user.user_id, data=body)
    return product_out(session, product_id)


@router.get("", response_model=ProductPage, summary="The store's products, newest first")
def list_products(
    tenant: CurrentTenant,
    session: SessionDep,
    status_filter: Annotated[ProductStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductPage:
    products, next_cursor = storefront.seller_products(session, status_filter, cursor, limit)
    return ProductPage(items=products_out(session, [p.id for p in products]), next_cursor=next_cursor)


@router.post(
    "/bulk",
    response_model=ImportResult,
    summary="Upload products from a CSV, XLSX or JSON file",
    description=bulk_upload.UPLOAD_DESCRIPTION,
    responses={413: {"description": "the file is too large"}, 422: {"description": "bad rows, all listed"}},
)
def upload_products(
    file: Annotated[UploadFile, File(description="the .csv, .xlsx or .json file")],
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
) -> ImportResult:
    content = file.file.read(bulk_upload.MAX_UPLOAD_BYTES + 1)
    if len(content) > bulk_upload.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"an upload holds at most {bulk_upload.MAX_UPLOAD_BYTES} bytes", field="file")
    return bulk_upload.import_upload(
        session,
        tenant_id=tenant.id,
        actor_user_id=user.user_id,
        filename=file.filename,
        content_type=file.content_type,
        content=content,
    )


@router.get("/{product_id}", response_model=ProductOut)
def get_product(product_id: uuid.UUID, tenant: CurrentTenant, session: SessionDep) -> ProductOut:
    catalog.require_live_product(session, product_id)
    return product_out(session, product_id)


@router.patch("/{product_id}", response_model=ProductOut, summary="Change product fields")
def update_product(
    product_id: uuid.UUID, body: ProductPatch, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> ProductOut:
    catalog.update_product(
        session,
        tenant_id=tenant.id,
        actor_user_id=user.user_id,
        product_id=product_id,
        changes=_changes(body),
    )
    return product_out(session, product_id)


@router.delete(
    "/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[SellerAdmin],
    summary="Delete a product (seller admins; soft delete)",
)
def delete_product(
    product_id: uuid.UUID, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> None:
    catalog.delete_product(session, tenant_id=tenant.id, actor_user_id=user.user_id, product_id=product_id)


@router.post(
    "/{product_id}/skus", status_code=status.HTTP_201_CREATED, response_model=ProductOut, summary="Add a SKU"
)
def add_sku(
    product_id: uuid.UUID, body: SkuData, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> ProductOut:
    catalog.add_sku(session, tenant_id=tenant.id, actor_user_id=user.user_id, product_id=product_id, sku=body)
    return product_out(session, product_id)


@router.patch("/{product_id}/skus/{sku_id}", response_model=ProductOut, summary="Change a SKU")
def update_sku(
    product_id: uuid.UUID,
    sku_id: uuid.UUID,
    body: SkuPatch,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
) -> ProductOut:
    catalog.update_sku(
        session,
        tenant_id=tenant.id,
        actor_user_id=user.user_id,
        product_id=product_id,
        sku_id=sku_id,
        changes=_changes(body),
    )
    return product_out(session, product_id)


@router.get(
    "/{product_id}/versions", response_model=list[VersionOut], summary="The product's history, newest first"
)
def list_versions(product_id: uuid.UUID, tenant: CurrentTenant, session: SessionDep) -> list[VersionOut]:
    return [
        VersionOut.model_validate(version, from_attributes=True)
        for version in catalog.product_versions(session, product_id)
    ]


@router.post(
    "/{product_id}/rollback",
    response_model=ProductOut,
    dependencies=[SellerAdmin],
    summary="Return the product to an earlier version (seller admins; recorded as a new version)",
)
def rollback_product(
    product_id: uuid.UUID, body: RollbackIn, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> ProductOut:
    catalog.rollback_product(
        session, tenant_id=tenant.id, actor_user_id=user.user_id, product_id=product_id, version=body.version
    )
    return product_out(session, product_id)
