"""Product reviews: only a buyer who received the product may write one; a platform admin
approves or rejects it; approved reviews make up the product's rating."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transactional.errors import Conflict, Forbidden, NotFound
from transactional.models import OrderItem, Product, Review, SubOrder
from transactional.services.orders import REVIEWABLE

MODERATION_DECISIONS = ("approved", "rejected")


def _delivered_item(session: Session, buyer_id: uuid.UUID, product_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(
        select(OrderItem.id)
        .join(SubOrder, SubOrder.id == OrderItem.sub_order_id)
        .where(
            OrderItem.buyer_id == buyer_id,
            OrderItem.product_id == product_id,
            SubOrder.status.in_(REVIEWABLE),
        )
        .order_by(OrderItem.created_at)
        .limit(1)
    )


def create_review(
    session: Session, *, buyer_id: uuid.UUID, product_id: uuid.UUID, rating: int, comment: str
) -> Review:
    product = session.get(Product, product_id)
    if product is None or product.deleted_at is not None:
        raise NotFound(f"product {product_id} not found", field="product_id")
    order_item_id = _delivered_item(session, buyer_id, product_id)
    if order_item_id is None:
        raise Forbidden("only a buyer who received this product may review it", field="product_id")
    review = Review(
        tenant_id=product.tenant_id,
        product_id=product_id,
        order_item_id=order_item_id,
        buyer_id=buyer_id,
        rating=rating,
        comment=comment,
        moderation_status="pending",
    )
    session.add(review)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("you have already reviewed this product", field="product_id") from exc
    return review


def approved_reviews(session: Session, product_id: uuid.UUID, *, limit: int, offset: int) -> list[Review]:
    return list(
        session.scalars(
            select(Review)
            .where(Review.product_id == product_id, Review.moderation_status == "approved")
            .order_by(Review.created_at.desc(), Review.id)
            .limit(limit)
            .offset(offset)
        )
    )


def reviews_to_moderate(session: Session, *, status: str, limit: int, offset: int) -> list[Review]:
    return list(
        session.scalars(
            select(Review)
            .where(Review.moderation_status == status)
            .order_by(Review.created_at, Review.id)
            .limit(limit)
            .offset(offset)
        )
    )


def _refresh_rating(session: Session, product_id: uuid.UUID) -> None:
    """Recompute from all approved reviews under the product's row lock, so concurrent approvals
    of the same product's reviews cannot overwrite each other's count."""
    product = session.scalar(
        select(Product)
        .where(Product.id == product_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    average, count = session.execute(
        select(func.avg(Review.rating), func.count()).where(
            Review.product_id == product_id, Review.moderation_status == "approved"
        )
    ).one()
    product.rating_count = count
    product.rating_avg = Decimal(average).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None
    session.flush()


def moderate(session: Session, review_id: uuid.UUID, decision: str) -> Review:
    review = session.scalar(
        select(Review)
        .where(Review.id == review_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if review is None:
        raise NotFound(f"review {review_id} not found", field="review_id")
    if review.moderation_status != "pending":
        raise Conflict(f"this review was already {review.moderation_status}", field="decision")
    review.moderation_status = decision
    session.flush()
    if decision == "approved":
        _refresh_rating(session, review.product_id)
    return review
