"""The platform's category tree: public to read, managed by platform admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, StringConstraints

from transactional.api.deps import PlatformAdmin, SessionDep, StorefrontSessionDep
from transactional.services import catalog
from transactional.services.catalog import CategorySegment

router = APIRouter(prefix="/v1", tags=["categories"])

CategoryName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CategoryOut(BaseModel):
    id: uuid.UUID
    slug: str = Field(description="the path from the root, e.g. home/kitchen")
    name: str
    parent_id: uuid.UUID | None
    created_at: datetime


class CategoryNode(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    parent_id: uuid.UUID | None
    children: list[CategoryNode]


class CategoryIn(BaseModel):
    slug: CategorySegment = Field(
        description="this node's own segment; its full slug is parent's slug/segment"
    )
    name: CategoryName
    parent_id: uuid.UUID | None = None


class CategoryPatch(BaseModel):
    name: CategoryName | None = None
    slug: CategorySegment | None = Field(None, description="a new own segment (the subtree's slugs follow)")
    parent_id: uuid.UUID | None = Field(None, description="move under this category; null makes it a root")


@router.get("/categories", response_model=list[CategoryNode], summary="The category tree")
def list_categories(session: StorefrontSessionDep) -> list[CategoryNode]:
    return [CategoryNode.model_validate(node) for node in catalog.category_tree(session)]


@router.post(
    "/admin/categories",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryOut,
    dependencies=[PlatformAdmin],
    summary="Create a category",
)
def create_category(body: CategoryIn, session: SessionDep) -> CategoryOut:
    category = catalog.create_category(session, segment=body.slug, name=body.name, parent_id=body.parent_id)
    return CategoryOut.model_validate(category, from_attributes=True)


@router.patch(
    "/admin/categories/{category_id}",
    response_model=CategoryOut,
    dependencies=[PlatformAdmin],
    summary="Rename a category or move it under another parent",
)
def update_category(category_id: uuid.UUID, body: CategoryPatch, session: SessionDep) -> CategoryOut:
    moves = {"parent_id": body.parent_id} if "parent_id" in body.model_fields_set else {}
    category = catalog.update_category(session, category_id, name=body.name, segment=body.slug, **moves)
    return CategoryOut.model_validate(category, from_attributes=True)
