"""Online features for serving: the item, seller and shopper features of a feature service
(`ranking_v1` by default), read from the online store the feature store is configured with.

Any failure to reach the registry or the online store raises `FeatureStoreUnavailable`, so a
caller can degrade (rank without features) instead of failing the request. An entity the store
does not know reads as a row of None.
"""

from __future__ import annotations

import threading
from pathlib import Path

from feature_repo.store import feature_store

FeatureValue = float | int | bool | str | list | None

# Which view holds which entity group's features (see feature_repo/feature_views).
ITEM_VIEW, SELLER_VIEW, USER_VIEW = "item_features", "seller_features", "user_features"


class FeatureStoreUnavailable(RuntimeError):
    """The feature store cannot answer (not applied yet, online store unreachable, ...)."""


class OnlineFeatures:
    """`items(product_ids)` gives each product's item features and its seller's features;
    `user(user_key)` a shopper's features. Names are the plain feature names (unique across views)."""

    def __init__(self, repo_path: Path | str | None = None, service: str = "ranking_v1") -> None:
        self._repo_path = repo_path
        self._service = service
        self._store = None
        self._references: dict[str, list[str]] | None = None
        # Feast's SQLite online store shares one connection between threads.
        self._lock = threading.Lock()

    def items(self, product_ids: list[str]) -> dict[str, dict[str, FeatureValue]]:
        product_ids = list(dict.fromkeys(product_ids))
        if not product_ids:
            return {}
        items = self._read(ITEM_VIEW, "product_id", product_ids)
        sellers = sorted({row["seller_id"] for row in items.values() if row.get("seller_id")})
        by_seller = self._read(SELLER_VIEW, "tenant_id", sellers) if sellers else {}
        empty_seller = dict.fromkeys(self._feature_names(SELLER_VIEW))
        return {product_id: {**row, **by_seller.get(row.get("seller_id"), empty_seller)}
                for product_id, row in items.items()}

    def user(self, user_key: str) -> dict[str, FeatureValue]:
        return self._read(USER_VIEW, "user_key", [user_key])[user_key]

    def _feature_names(self, view: str) -> list[str]:
        return [reference.split(":", 1)[1] for reference in self._view_references().get(view, [])]

    def _read(self, view: str, join_key: str, keys: list[str]) -> dict[str, dict[str, FeatureValue]]:
        references = self._view_references().get(view)
        if not references:
            return {key: {} for key in keys}
        try:
            with self._lock:
                response = self._connected().get_online_features(
                    features=references, entity_rows=[{join_key: key} for key in keys]).to_dict()
        except Exception as exc:  # any backend's error: the caller only needs to know it has no features
            raise FeatureStoreUnavailable(f"online features of {view} unavailable: {exc}") from exc
        names = self._feature_names(view)
        return {key: {name: response[name][index] for name in names} for index, key in enumerate(keys)}

    def _connected(self):
        if self._store is None:
            try:
                self._store = feature_store(self._repo_path)
            except Exception as exc:  # a broken or unreadable configuration
                raise FeatureStoreUnavailable(f"feature store not configured: {exc}") from exc
        return self._store

    def _view_references(self) -> dict[str, list[str]]:
        """`view:feature` references of the service, per feature view (read from the registry once)."""
        if self._references is None:
            try:
                with self._lock:
                    service = self._connected().get_feature_service(self._service)
            except FeatureStoreUnavailable:
                raise
            except Exception as exc:  # registry missing (never applied) or unreachable
                raise FeatureStoreUnavailable(f"feature service {self._service} unavailable: {exc}") from exc
            self._references = {
                projection.name_to_use(): [f"{projection.name_to_use()}:{feature.name}"
                                           for feature in projection.features]
                for projection in service.feature_view_projections}
        return self._references
