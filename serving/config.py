"""Settings of the serving API (environment variables MARKETLAKE_SEARCH_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from transactional.config import get_settings


class SearchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_SEARCH_", extra="ignore")

    lexical_window: int = Field(1000, description="lexical hits considered per query (fused, faceted, paged)")
    semantic_window: int = Field(300, description="nearest products considered per query")
    min_similarity: float = Field(0.4, description="cosine floor for a semantic match")
    relaxed_min_similarity: float = Field(0.3, description="cosine floor in the zero-result fallback")
    lexical_weight: float = Field(1.0, description="RRF weight of the lexical ranking")
    semantic_weight: float = Field(1.0, description="RRF weight of the semantic ranking")
    affinity_weight: float = Field(0.3, description="re-ranking weight of user-item affinity")
    popularity_weight: float = Field(0.2, description="re-ranking weight of popularity")
    rating_weight: float = Field(0.05, description="re-ranking weight of the (Bayesian) rating")
    facet_size: int = Field(20, description="values listed per facet")
    refresh_seconds: float = Field(2.0, description="how often the change feed is read")
    popularity_days: int = Field(90, description="interactions counted into popularity at index build")
    suggest_min_sessions: int = Field(3, description="sessions that must have searched a query before it is"
                                      " suggested")
    profile_events: int = Field(50, description="recent interactions making a shopper's profile")
    snapshot_dir: Path | None = Field(None, description="saved index; default MARKETLAKE_HOME/search")
    compute_threads: int = Field(1, description="threads one request's model, BLAS and FAISS calls may use: "
                                 "requests already run in parallel, and intra-op threads contend badly")

    def snapshot_path(self) -> Path:
        return self.snapshot_dir or get_settings().home_dir / "search"


@lru_cache
def get_search_settings() -> SearchSettings:
    return SearchSettings()


class ServingSettings(BaseSettings):
    """Resilience, A/B experiments and impression logging of the serving app (MARKETLAKE_SERVING_*)."""

    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_SERVING_", extra="ignore")

    request_timeout_seconds: float | None = Field(
        2.0, gt=0, description="a request still running after this answers 503 (timed_out); unset: no limit")
    tenant_requests_per_minute: int = Field(
        6000, ge=1, description="requests per minute one storefront (a request's single `tenant_id`) may make")
    experiments_refresh_seconds: float = Field(5.0, gt=0, description="how often running experiments are read")
    impression_flush_seconds: float = Field(1.0, gt=0, description="how often queued impressions are written")
    impression_queue_size: int = Field(
        100_000, ge=1, description="impressions held while the database lags; beyond it new ones are dropped")


@lru_cache
def get_serving_settings() -> ServingSettings:
    return ServingSettings()


class RecommendationSettings(BaseSettings):
    """Settings of the recommendation service (MARKETLAKE_RECS_*)."""

    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_RECS_", extra="ignore")

    registered_model: str = Field("marketlake-recommender", description="MLflow registered model whose `champion`"
                                  " version is served")
    poll_seconds: float = Field(10.0, gt=0, description="how often the registry is asked for a new champion")
    refresh_seconds: float = Field(10.0, gt=0, description="how often popularity orders and model-catalogue"
                                   " mappings are rebuilt")
    candidates_per_item: int = Field(10, ge=1, description="nearest neighbours retrieved per query vector, per"
                                     " product asked for (100 for a list of 10): rules and diversity need spares,"
                                     " and each neighbour costs HNSW search time")
    scoped_widen: int = Field(5, ge=1, description="neighbours multiplier under a store or category scope too"
                              " large for exact scoring")
    exact_max: int = Field(20_000, ge=0, description="a store or category scope with at most this many products"
                           " is scored exactly over all of them")
    session_events: int = Field(10, ge=1, description="latest interactions making the session vector")
    session_decay: float = Field(0.85, gt=0, le=1, description="weight ratio of each older session interaction")
    session_weight: float = Field(0.5, ge=0, le=1, description="share of the session vector in the query vector"
                                  " of a shopper the model knows")
    affinity_weight: float = Field(0.3, ge=0, description="weight of the shopper's affinity next to item"
                                   " similarity (pdp, cart, post_purchase)")
    attribution_similarity: float = Field(0.5, description="cosine to a session item above which a"
                                          " recommendation is explained by it")
    popularity_weight: float = Field(0.2, ge=0, description="re-ranking weight of log-popularity")
    rating_weight: float = Field(0.05, ge=0, description="re-ranking weight of the Bayesian rating")
    conversion_weight: float = Field(0.1, ge=0, description="re-ranking weight of 30-day conversion (feature"
                                     " store)")
    seller_rating_weight: float = Field(0.05, ge=0, description="re-ranking weight of the seller's rating"
                                        " (feature store)")
    feature_window: int = Field(100, ge=1, description="best candidates re-ranked with feature store signals")
    seller_share: float = Field(0.3, gt=0, le=1, description="most of a list one store may fill")
    category_share: float = Field(0.4, gt=0, le=1, description="most of a list one category may fill")
    trending_half_life_hours: float = Field(24.0, gt=0, description="half-life of trending interaction counts")
    history_users: int = Field(200_000, ge=1, description="shopper histories kept in memory (LRU)")
    history_events: int = Field(50, ge=1, description="latest events kept per shopper")
    history_seconds: float = Field(300.0, gt=0, description="a signed-in shopper's history is re-read from the"
                                   " database after this long")
    cache_seconds: float = Field(30.0, ge=0, description="lifetime of a cached result (0: no cache); a shopper's"
                                 " new event invalidates theirs at once")
    cache_size: int = Field(100_000, ge=1, description="cached results kept")
    feature_cache_seconds: float = Field(60.0, ge=0, description="how long item features read from the feature"
                                         " store are reused")
    feature_store: bool = Field(True, description="re-rank with item features from the Feast online store")
    feature_timeout_seconds: float = Field(0.1, gt=0, description="how long a request waits for the feature"
                                           " store before ranking without it (degraded)")
    feature_service: str = Field("ranking_v1", description="Feast feature service read for re-ranking")


@lru_cache
def get_recommendation_settings() -> RecommendationSettings:
    return RecommendationSettings()
