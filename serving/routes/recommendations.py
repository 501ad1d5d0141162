"""Shopper recommendations: one list per context, carousels in one call, similar items."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from prometheus_client import Counter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from serving.experiments import ExperimentTag, assign
from serving.impressions import Shopper, ShopperDep, impressions
from serving.recommend.engine import Context, Pick, Reason, RecommendationRequest
from serving.recommend.service import (
    SURFACE,
    Recommendations,
    RecommendationService,
    RecommendationsUnavailable,
)
from serving.routes.search import CATEGORY_PATH, ListedProduct
from transactional.api.deps import OptionalPrincipal
from transactional.errors import Forbidden, Unprocessable
from transactional.models import Role
from transactional.services.security import Principal

router = APIRouter(tags=["recommendations"])
RECOMMENDATIONS = Counter("marketlake_recommendations_total", "Recommendation lists by strategy and outcome",
                          ["strategy", "outcome"])
MAX_K = 100
MAX_CAROUSELS = 10
_ANCHORED = {Context.pdp: "the viewed product", Context.cart: "a product in the cart (default: the shopper's cart)",
             Context.post_purchase: "the bought product (default: their latest purchases)"}

UserId = Annotated[uuid.UUID | None, Query(
    description="the shopper: the signed-in shopper's own id (the bearer token's), or any shopper's with a"
                " platform token; default the token's shopper, else the X-Anonymous-ID header's device")]
CategoryPath = Annotated[str | None, Query(pattern=CATEGORY_PATH, max_length=255,
                                           description="only this category (slug path; sub-categories too)")]
StoreScope = Annotated[uuid.UUID | None, Query(description="storefront scope: only this store's products")]


class RecommendedItem(ListedProduct):
    score: float = Field(description="ranking score; comparable within one list only")
    reason: str = Field(description='why it is recommended, for display: "because you viewed …", "similar to …",'
                                    ' "popular in …", "trending now", …')
    reason_code: Reason
    based_on: str | None = Field(description="the product the reason refers to (viewed, carted, bought, similar to)")


class RecommendationList(BaseModel):
    context: Context
    items: list[RecommendedItem]
    model_version: str | None = Field(description="registered model version that ranked the list; null when"
                                                  " popularity did")
    strategy: str = Field(description="personalised (the model) or popular (fallback chain only)")
    degraded: bool = Field(description="a part was unavailable and the list is a fallback (see degraded_reasons)")
    degraded_reasons: list[str] = Field(description="model_unavailable, model_failed, feature_store_unavailable")
    cached: bool = Field(description="served from this shopper's result cache")
    experiment: ExperimentTag = Field(description="the A/B experiment and variant (null when none runs), the"
                                                  " served model version and the request id")


class CarouselIn(BaseModel):
    context: Context = Context.homepage
    item_id: uuid.UUID | None = None
    k: int = Field(10, ge=1, le=MAX_K)
    tenant_id: uuid.UUID | None = None
    category: str | None = Field(None, pattern=CATEGORY_PATH, max_length=255)


class BatchIn(BaseModel):
    user_id: uuid.UUID | None = Field(None, description="as the `user_id` query parameter of a single list")
    carousels: list[CarouselIn] = Field(min_length=1, max_length=MAX_CAROUSELS)
    distinct: bool = Field(True, description="a product appears in one carousel only (the first that has it)")


class BatchOut(BaseModel):
    carousels: list[RecommendationList]


def _service(request: Request) -> RecommendationService:
    service: RecommendationService | None = request.app.state.recommendations
    if service is None:
        raise RecommendationsUnavailable("recommendations are not enabled in this process", field="recommendations")
    return service


def _shopper(principal: Principal | None, shopper: Shopper, user_id: uuid.UUID | None) -> Shopper:
    """Whose recommendations: a shopper's history shows in the reasons ("because you bought …"), so
    only that shopper (or the platform) may ask for them by id."""
    if user_id is None:
        return shopper if principal is None or principal.role == Role.buyer else \
            Shopper(None, shopper.anonymous_id, shopper.session_id)
    if principal is None or (principal.role != Role.platform_admin and principal.user_id != user_id):
        raise Forbidden("only the signed-in shopper (or the platform) may ask for a shopper's recommendations",
                        field="user_id")
    return Shopper(user_id, None, shopper.session_id)


def _request(context: Context, shopper: Shopper, item_id: uuid.UUID | None, k: int, tenant_id: uuid.UUID | None,
             category: str | None, exclude: frozenset[str] = frozenset()) -> RecommendationRequest:
    return RecommendationRequest(
        context=context, user_key=shopper.key, item_id=str(item_id) if item_id is not None else None, k=k,
        tenant_id=str(tenant_id) if tenant_id is not None else None, category=category, exclude=exclude)


async def _answer(request: Request, service: RecommendationService, shopper: Shopper,
                  recommendation: RecommendationRequest) -> RecommendationList:
    """One list, tagged with the shopper's experiment variant, its impressions recorded. Made on
    the event loop when it needs nothing outside memory (a list takes about a millisecond, less than
    a worker thread's hand-offs cost under load), else in a worker thread (database, feature store)."""
    assignment = assign(shopper.key, SURFACE)
    if service.answers_from_memory(recommendation):
        result = service.recommend(recommendation, assignment)
    else:
        result = await run_in_threadpool(service.recommend, recommendation, assignment)
    tag = ExperimentTag.of(assignment, request.state.correlation_id).model_copy(
        update={"model_version": result.model_version, "strategy": result.strategy})
    listed = _list(service, recommendation.context, result, tag)
    impressions.record(shopper, tag, [item.id for item in listed.items])
    return listed


def _reason(service: RecommendationService, pick: Pick) -> str:
    title = service.engine.columns.documents[pick.based_on].title if pick.based_on is not None else ""
    return {
        Reason.viewed: f"because you viewed {title}",
        Reason.carted: f"because you added {title} to your cart",
        Reason.bought: f"because you bought {title}",
        Reason.similar: f"similar to {title}",
        Reason.for_you: "picked for you",
        Reason.popular_in_category: f"popular in {pick.label}",
        Reason.popular_in_store: f"popular at {pick.label}",
        Reason.trending: "trending now",
        Reason.popular: "popular with shoppers",
    }[pick.reason]


def _list(service: RecommendationService, context: Context, result: Recommendations, tag: ExperimentTag
          ) -> RecommendationList:
    documents, ids = service.engine.columns.documents, service.engine.columns.ids
    items = [
        RecommendedItem(
            id=document.id, title=document.title, brand=document.brand, category=document.category,
            tenant_id=document.tenant_id, store_name=document.store_name, price=document.price,
            currency=document.currency, rating_avg=document.rating_avg, rating_count=document.rating_count,
            in_stock=document.in_stock, image=document.image, score=round(pick.score, 6),
            reason=_reason(service, pick), reason_code=pick.reason,
            based_on=ids[pick.based_on] if pick.based_on is not None else None,
        )
        for pick in result.picks
        for document in (documents[pick.slot],)
    ]
    outcome = "degraded" if result.degraded else "cached" if result.cached else "fresh"
    RECOMMENDATIONS.labels(result.strategy, outcome).inc()
    return RecommendationList(
        context=context, items=items, model_version=result.model_version, strategy=result.strategy,
        degraded=result.degraded, degraded_reasons=list(result.degraded_reasons), cached=result.cached,
        experiment=tag)


@router.get("/v1/recommendations", summary="Recommendations for a shopper in a context (homepage, product page,"
            " cart, after a purchase)", responses={403: {"description": "user_id names another shopper"},
                                                    404: {"description": "unknown item_id"},
                                                    503: {"description": "the catalogue is not loaded yet"}})
async def recommendations(
    request: Request,
    principal: OptionalPrincipal,
    shopper: ShopperDep,
    user_id: UserId = None,
    context: Annotated[Context, Query(description="where the list is shown")] = Context.homepage,
    item_id: Annotated[uuid.UUID | None, Query(description="pdp: " + _ANCHORED[Context.pdp] + " (required); cart: "
                                               + _ANCHORED[Context.cart] + "; post_purchase: "
                                               + _ANCHORED[Context.post_purchase])] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="how many products")] = 10,
    tenant_id: StoreScope = None,
    category: CategoryPath = None,
) -> RecommendationList:
    if context == Context.pdp and item_id is None:
        raise Unprocessable("item_id is required for the pdp context", field="item_id")
    service = _service(request)
    shopper = _shopper(principal, shopper, user_id)
    return await _answer(request, service, shopper, _request(context, shopper, item_id, k, tenant_id, category))


@router.post("/v1/recommendations/batch", summary="Several recommendation lists (carousels) in one call",
             responses={403: {"description": "user_id names another shopper"},
                        404: {"description": "unknown item_id"}, 503: {"description": "catalogue not loaded"}})
async def recommendation_batch(request: Request, principal: OptionalPrincipal, shopper: ShopperDep, body: BatchIn
                         ) -> BatchOut:
    for index, carousel in enumerate(body.carousels):
        if carousel.context == Context.pdp and carousel.item_id is None:
            raise Unprocessable("item_id is required for the pdp context", field=f"carousels.{index}.item_id")
    service = _service(request)
    shopper = _shopper(principal, shopper, body.user_id)
    shown: set[str] = set()
    lists = []
    for carousel in body.carousels:
        listed = await _answer(request, service, shopper, _request(
            carousel.context, shopper, carousel.item_id, carousel.k, carousel.tenant_id, carousel.category,
            frozenset(shown)))
        if body.distinct:
            shown.update(item.id for item in listed.items)
        lists.append(listed)
    return BatchOut(carousels=lists)


@router.get("/v1/items/{item_id}/similar", summary="Products similar to one product",
            responses={404: {"description": "unknown item_id"}, 503: {"description": "catalogue not loaded"}})
async def similar_items(
    request: Request,
    item_id: Annotated[uuid.UUID, Path(description="the product")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    tenant_id: StoreScope = None,
    category: CategoryPath = None,
) -> RecommendationList:
    """Nearest products in the model's item space (cosine), under the same rules as recommendations;
    not personalised, so one list serves every shopper."""
    service = _service(request)
    anyone = Shopper(None, None, None)
    return await _answer(request, service, anyone, _request(Context.pdp, anyone, item_id, k, tenant_id, category))
