"""Shopper search: hybrid retrieval with facets, sorting, cursor paging, and autocompletion."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from prometheus_client import Counter
from pydantic import BaseModel, Field

from serving.experiments import ExperimentTag, assign
from serving.impressions import ShopperDep, impressions
from serving.search.columns import FacetValue, SearchFilters
from serving.search.engine import Retrieval, SearchEngine, SearchRequest, SearchResult, SortOrder
from serving.search.service import SearchService
from transactional.errors import Unprocessable

router = APIRouter(prefix="/v1/search", tags=["search"])
SEARCHES = Counter("marketlake_search_queries_total", "Searches by outcome", ["outcome"])
CATEGORY_PATH = r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$"
# What a search experiment's variant may name as its strategy (transactional.services.experiments
# checks the names): (retrieval, personalised).
STRATEGIES = {"hybrid": (Retrieval.hybrid, True), "lexical": (Retrieval.lexical, True),
              "semantic": (Retrieval.semantic, True), "unpersonalised": (Retrieval.hybrid, False)}


class ListedProduct(BaseModel):
    """A product as shoppers see it in any list (search results, recommendations)."""
    id: str
    title: str
    brand: str | None
    category: str | None = Field(description="category slug path")
    tenant_id: str
    store_name: str
    price: float = Field(description="the lowest active SKU price")
    currency: str
    rating_avg: float | None
    rating_count: int
    in_stock: bool
    image: str | None


class SearchItem(ListedProduct):
    score: float = Field(description="ranking score (relevance, re-ranked); comparable within one search only")
    matched_by: list[str] = Field(description="retrievers that found it: lexical, semantic")


class FacetBucket(BaseModel):
    value: str = Field(description="the filter value to send back (category path, brand, tenant id, ...)")
    count: int
    label: str | None = Field(None, description="display name, e.g. the store name of a tenant")
    min: float | None = Field(None, description="price or rating bucket lower bound (inclusive)")
    max: float | None = Field(None, description="price bucket upper bound (exclusive; none = open)")


class Facets(BaseModel):
    category: list[FacetBucket] = Field(description="each product also counts for its ancestor categories")
    brand: list[FacetBucket]
    tenant: list[FacetBucket]
    price: list[FacetBucket]
    rating: list[FacetBucket] = Field(description="products rated at least `min`")


class Relaxed(BaseModel):
    applied: bool = Field(description="the query as given found nothing; these results come from a relaxed one")
    steps: list[str] = Field(description="any_words: any word may match, with more typos and looser meaning;"
                                         " dropped_filters: the filters were ignored")
    dropped_filters: list[str]


class SearchPage(BaseModel):
    query: str
    total: int = Field(description="results available to page through")
    items: list[SearchItem]
    facets: Facets | None
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    relaxed: Relaxed
    experiment: ExperimentTag


class SuggestionOut(BaseModel):
    text: str
    kind: str = Field(description="query (a popular search) or product (a product title)")
    product_id: str | None = None


class Suggestions(BaseModel):
    query: str
    suggestions: list[SuggestionOut]


def _engine(request: Request) -> SearchEngine:
    service: SearchService = request.app.state.search
    return service.engine


def _bucket(value: FacetValue) -> FacetBucket:
    return FacetBucket(value=value.value, count=value.count, label=value.label, min=value.min, max=value.max)


def _page(query: str, result: SearchResult, with_facets: bool, tag: ExperimentTag) -> SearchPage:
    items = [
        SearchItem(
            id=hit.document.id, title=hit.document.title, brand=hit.document.brand, category=hit.document.category,
            tenant_id=hit.document.tenant_id, store_name=hit.document.store_name, price=hit.document.price,
            currency=hit.document.currency, rating_avg=hit.document.rating_avg,
            rating_count=hit.document.rating_count, in_stock=hit.document.in_stock, image=hit.document.image,
            score=round(hit.score, 6), matched_by=list(hit.matched_by),
        )
        for hit in result.hits
    ]
    facets = Facets(**{name: [_bucket(value) for value in values] for name, values in result.facets.items()}
                    ) if with_facets else None
    return SearchPage(query=query, total=result.total, items=items, facets=facets, next_cursor=result.next_cursor,
                      relaxed=Relaxed(applied=bool(result.relaxations), steps=list(result.relaxations),
                                      dropped_filters=result.dropped_filters), experiment=tag)


@router.get("", summary="Search products (hybrid lexical + semantic, personalised for the signed-in shopper)")
def search(
    request: Request,
    shopper: ShopperDep,
    q: Annotated[str, Query(max_length=200,
                            description="what the shopper typed; empty lists the filtered catalog")] = "",
    category: Annotated[list[Annotated[str, Field(pattern=CATEGORY_PATH, max_length=255)]], Query(
        description="category slug path(s); sub-categories match too")] = [],  # noqa: B006 (FastAPI reads it)
    tenant_id: Annotated[list[uuid.UUID], Query(description="store(s)")] = [],  # noqa: B006
    brand: Annotated[list[Annotated[str, Field(min_length=1, max_length=120)]], Query(
        description="brand(s), case-insensitive")] = [],  # noqa: B006
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    rating_min: Annotated[float | None, Query(ge=0, le=5)] = None,
    in_stock: Annotated[bool | None, Query(description="true: only in stock; false: only out of stock")] = None,
    sort: SortOrder = SortOrder.relevance,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    facets: Annotated[bool, Query(description="include facet counts")] = True,
) -> SearchPage:
    if price_min is not None and price_max is not None and price_min > price_max:
        raise Unprocessable("price_min must not exceed price_max", field="price_min")
    filters = SearchFilters(
        categories=tuple(category), tenant_ids=tuple(map(str, tenant_id)), brands=tuple(brand),
        price_min=price_min, price_max=price_max, rating_min=rating_min, in_stock=in_stock,
    )
    assignment = assign(shopper.key, "search")
    strategy = assignment.strategy if assignment is not None else None
    retrieval, personalise = STRATEGIES.get(strategy, STRATEGIES["hybrid"])
    result = _engine(request).search(SearchRequest(
        query=q, filters=filters, sort=sort, limit=limit, cursor=cursor, facets=facets,
        user_id=str(shopper.user_id) if shopper.user_id is not None else None,
        retrieval=retrieval, personalise=personalise,
    ))
    outcome = "empty" if not result.hits else "relaxed" if result.relaxations else "results"
    SEARCHES.labels(outcome).inc()
    tag = ExperimentTag.of(assignment, request.state.correlation_id)
    impressions.record(shopper, tag, [hit.document.id for hit in result.hits], query=q)
    return _page(q, result, facets, tag)


@router.get("/suggest", summary="Autocomplete: popular searches and product titles")
def suggest(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=100, description="what the shopper has typed so far")],
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> Suggestions:
    suggestions = _engine(request).suggest(q, limit)
    return Suggestions(query=q, suggestions=[
        SuggestionOut(text=s.text, kind=s.kind, product_id=s.product_id) for s in suggestions])
