"""Item features from the Feast online store (`feature_repo.online`), for re-ranking.

Features come from nightly gold snapshots, so a product's features are reused for `ttl_seconds`
instead of being read on every request: a hot list costs no online-store round trip. A read gets
`timeout_seconds`; a slower one is left to finish in the background (it fills the cache for the
next request) while this request ranks without features. Once the store has failed, requests no
longer wait for it: every `RETRY_SECONDS` one read is sent in the background, and when it
succeeds requests use the store again (a broken store must add its timeout to no request). Either
way the request says so (`degraded`)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Protocol

from cachetools import TTLCache

from serving.recommend.engine import ItemFeatures
from transactional.observability import log

RETRY_SECONDS = 5.0
READERS = 2


class OnlineItemFeatures(Protocol):
    def items(self, product_ids: list[str]) -> ItemFeatures: ...


class FeaturesUnavailable(Exception):
    """The feature store could not answer in time (whatever the reason: it is optional for a request)."""


def feast_features(feature_service: str) -> OnlineItemFeatures | None:
    """The platform's Feast store, or None when this installation has no feature repository."""
    try:
        from feature_repo.online import OnlineFeatures
    except ImportError:
        return None
    return OnlineFeatures(service=feature_service)


class CachedFeatures:
    def __init__(self, online: OnlineItemFeatures, ttl_seconds: float = 60.0, timeout_seconds: float = 0.1,
                 size: int = 500_000) -> None:
        self.online = online
        self.timeout_seconds = timeout_seconds
        self._cache: TTLCache[str, dict] | None = TTLCache(size, ttl_seconds) if ttl_seconds > 0 else None
        self._lock = threading.Lock()
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="feature-reader")
        self.last_error: str | None = None  # set while the store is failing
        self._next_retry = 0.0

    def warm(self) -> None:
        """Connect and read the feature service's definition now, off the request path."""
        try:
            self._read(["warm-up"])
        except FeaturesUnavailable:
            pass  # logged; requests will say so

    def items(self, product_ids: list[str]) -> ItemFeatures:
        """Features of the products; `FeaturesUnavailable` when the store cannot answer in time for
        the ones not cached."""
        if self.failing:  # whatever is cached, the rest cannot be had: no need to look
            self._retry(product_ids)
            raise FeaturesUnavailable(self.last_error)
        found: ItemFeatures = {}
        if self._cache is not None:
            with self._lock:
                found = {product_id: row for product_id in product_ids
                         if (row := self._cache.get(product_id)) is not None}
        missing = [product_id for product_id in product_ids if product_id not in found]
        if not missing:
            return found
        try:
            return {**found, **self._readers.submit(self._read, missing).result(timeout=self.timeout_seconds)}
        except FutureTimeout:
            raise FeaturesUnavailable(f"no answer within {self.timeout_seconds * 1000:.0f} ms") from None

    @property
    def failing(self) -> bool:
        return self.last_error is not None

    def _retry(self, product_ids: list[str]) -> None:
        """Ask a failing store again in the background, at most every RETRY_SECONDS."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_retry:
                return
            self._next_retry = now + RETRY_SECONDS
        self._readers.submit(self._read, product_ids)

    def _read(self, product_ids: list[str]) -> ItemFeatures:
        try:
            read = self.online.items(product_ids)
        except Exception as error:  # FeatureStoreUnavailable, or anything a backend throws
            with self._lock:
                self._next_retry = time.monotonic() + RETRY_SECONDS
            self.last_error = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.warning("feature store unavailable", error=self.last_error)
            raise FeaturesUnavailable(self.last_error) from error
        if self.last_error is not None:
            log.info("feature store available again")
            self.last_error = None
        if self._cache is not None:
            with self._lock:
                self._cache.update(read)
        return read


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
