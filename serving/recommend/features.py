"""Item features from the Feast online store (`feature_repo.online`), for re-ranking.

Features come from nightly gold snapshots, so a product's features are reused for
`ttl_seconds` instead of being read on every request: a hot list costs no online-store round
trip. When the store fails, it is not asked again for `retry_seconds` (a broken store must not add
its timeout to every request); meanwhile requests rank without it and say so (`degraded`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from cachetools import TTLCache

from serving.recommend.engine import ItemFeatures
from transactional.observability import log

RETRY_SECONDS = 5.0


class OnlineItemFeatures(Protocol):
    def items(self, product_ids: list[str]) -> ItemFeatures: ...


def feast_features(feature_service: str) -> OnlineItemFeatures | None:
    """The platform's Feast store, or None when this installation has no feature repository."""
    try:
        from feature_repo.online import OnlineFeatures
    except ImportError:
        return None
    return OnlineFeatures(service=feature_service)


class FeaturesUnavailable(Exception):
    """The feature store could not answer (whatever the reason: it is optional for a request)."""


class CachedFeatures:
    def __init__(self, online: OnlineItemFeatures, ttl_seconds: float = 60.0, size: int = 500_000) -> None:
        self.online = online
        self._cache: TTLCache[str, dict] = TTLCache(size, ttl_seconds) if ttl_seconds > 0 else None
        self._lock = threading.Lock()
        self._failed_until = 0.0
        self.last_error: str | None = None

    def items(self, product_ids: list[str]) -> ItemFeatures:
        """Features of the products; `FeaturesUnavailable` when the store cannot answer for the
        ones not cached."""
        found: ItemFeatures = {}
        if self._cache is not None:
            with self._lock:
                found = {product_id: row for product_id in product_ids
                         if (row := self._cache.get(product_id)) is not None}
        missing = [product_id for product_id in product_ids if product_id not in found]
        if not missing:
            return found
        if time.monotonic() < self._failed_until:
            raise FeaturesUnavailable(self.last_error or "feature store unavailable")
        try:
            read = self.online.items(missing)
        except Exception as error:  # FeatureStoreUnavailable, or anything a backend throws
            self._failed_until = time.monotonic() + RETRY_SECONDS
            self.last_error = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.warning("feature store unavailable", error=self.last_error)
            raise FeaturesUnavailable(self.last_error) from error
        if self._cache is not None:
            with self._lock:
                self._cache.update(read)
        return {**found, **read}


@dataclass
class FeatureRead:
    """One request's access to item features: remembers whether the store failed it."""

    source: CachedFeatures | None
    unavailable: str | None = field(default=None)

    def __call__(self, product_ids: list[str]) -> ItemFeatures | None:
        if self.source is None:
            return None
        try:
            return self.source.items(product_ids)
        except FeaturesUnavailable as error:
            self.unavailable = str(error) or "feature store unavailable"
            return None
