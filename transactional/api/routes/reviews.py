"""Product reviews: written by buyers who received the product, moderated by platform admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from transactional.api.deps import Buyer, CurrentUser, PlatformAdmin, SessionDep, StorefrontSessionDep
from transactional.services import reviews

router = APIRouter(prefix="/v1", tags=["reviews"])

Page = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0)]


class ReviewIn(BaseModel):
    rating: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=5000)


class ReviewOut(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    buyer_id: uuid.UUID
    rating: int
    comment: str
    moderation_status: str
    created_at: datetime


class ModerationIn(BaseModel):
    decision: Literal["approved", "rejected"]


def review_out(review) -> ReviewOut:
    return ReviewOut.model_validate(review, from_attributes=True)


@router.post(
    "/products/{product_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewOut,
    dependencies=[Buyer],
    summary="Review a product you received (pending until moderated)",
    responses={403: {"description": "the caller has no delivered item of this product"}},
)
def create_review(
    product_id: uuid.UUID, body: ReviewIn, principal: CurrentUser, session: SessionDep
) -> ReviewOut:
    return review_out(
        reviews.create_review(
            session,
            buyer_id=principal.user_id,
            product_id=product_id,
            rating=body.rating,
            comment=body.comment,
        )
    )


@router.get(
    "/products/{product_id}/reviews", response_model=list[ReviewOut], summary="Approved reviews of a product"
)
def list_reviews(
    product_id: uuid.UUID, session: StorefrontSessionDep, limit: Page = 20, offset: Offset = 0
) -> list[ReviewOut]:
    return [review_out(r) for r in reviews.approved_reviews(session, product_id, limit=limit, offset=offset)]


@router.get(
    "/admin/reviews",
    response_model=list[ReviewOut],
    dependencies=[PlatformAdmin],
    summary="Reviews by moderation status (oldest first)",
)
def reviews_to_moderate(
    session: SessionDep,
    status_filter: Annotated[Literal["pending", "approved", "rejected"], Query(alias="status")] = "pending",
    limit: Page = 50,
    offset: Offset = 0,
) -> list[ReviewOut]:
    found = reviews.reviews_to_moderate(session, status=status_filter, limit=limit, offset=offset)
    return [review_out(r) for r in found]


@router.post(
    "/admin/reviews/{review_id}/moderation",
    response_model=ReviewOut,
    dependencies=[PlatformAdmin],
    summary="Approve or reject a pending review (approval updates the product's rating)",
)
def moderate(review_id: uuid.UUID, body: ModerationIn, session: SessionDep) -> ReviewOut:
    return review_out(reviews.moderate(session, review_id, body.decision))
