"""The serving API (search and recommendations): a FastAPI app separate from the transactional
one, so heavy in-memory indexes scale and restart on their own.

It speaks like the transactional API, through the same layer (`transactional.api.common`):
application/problem+json errors naming the field, X-Correlation-ID on every response, Prometheus
request metrics, OpenTelemetry spans, and bearer tokens from /v1/auth/login read by the same
dependency. On top: a time limit per request (`MARKETLAKE_SERVING_REQUEST_TIMEOUT_SECONDS`, 503
flagged `timed_out`) and per-storefront rate limits (`serving.resilience`). The search index
loads in a background thread, so the process answers /healthz at once and /readyz (and searches)
once the index is in memory. Running A/B experiments are re-read in the background
(`serving.experiments`) and their impressions written in batches (`serving.impressions`)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import Gauge

from serving.config import get_recommendation_settings, get_search_settings, get_serving_settings
from serving.experiments import experiments
from serving.impressions import impressions
from serving.recommend.service import RecommendationService
from serving.resilience import storefront_rate_limit
from serving.routes import ROUTERS
from serving.search.service import SearchService
from serving.search.vectors import limit_compute_threads
from transactional.api import openapi
from transactional.api.common import install_common
from transactional.config import get_settings
from transactional.observability import configure_logging

INDEX_PRODUCTS = Gauge("marketlake_search_index_products", "Products in this process's search index")
INDEX_STALENESS = Gauge("marketlake_search_seconds_since_refresh", "Seconds since the index last read the change feeds")


def _ready(app: FastAPI) -> bool:
    return app.state.search is not None and app.state.search.ready


def _staleness(app: FastAPI) -> float:
    seconds = app.state.search.seconds_since_refresh() if app.state.search is not None else None
    return math.nan if seconds is None else seconds


@asynccontextmanager
async def _experiments_and_impressions() -> AsyncIterator[None]:
    settings = get_serving_settings()
    experiments.start(settings.experiments_refresh_seconds)
    impressions.start(settings.impression_flush_seconds)
    try:
        yield
    finally:
        impressions.stop()
        experiments.stop()


def create_app(search: SearchService | None = None,
               recommendations: RecommendationService | None = None) -> FastAPI:
    """The app; `search` (and `recommendations`) are already opened services (tests), otherwise
    both are started here."""
    configure_logging(get_settings().log_level)
    limit_compute_threads(get_search_settings().compute_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _experiments_and_impressions():
            if search is not None:
                yield
                return
            service = app.state.search = SearchService(get_search_settings())
            recommender = app.state.recommendations = RecommendationService(
                service, get_recommendation_settings())
            service.start()
            recommender.start()
            try:
                yield
            finally:
                recommender.stop()
                service.stop()

    app = FastAPI(title="Marketlake serving API", version="0.1.0", lifespan=lifespan,
                  description="Product search and recommendations for shoppers.",
                  dependencies=[Depends(storefront_rate_limit)])
    app.state.search = search
    app.state.recommendations = recommendations
    INDEX_PRODUCTS.set_function(lambda: len(app.state.search.engine.index) if _ready(app) else 0)
    INDEX_STALENESS.set_function(lambda: _staleness(app))
    install_common(app, service_name="marketlake-serving",
                   request_timeout=get_serving_settings().request_timeout_seconds)
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    return app
