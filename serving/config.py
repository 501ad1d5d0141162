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
