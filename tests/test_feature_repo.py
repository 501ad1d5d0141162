"""The Feast feature repository: definitions, the online interface serving uses, and what it
does when the store cannot answer."""

from __future__ import annotations

import pytest

from feature_repo.online import FeatureStoreUnavailable, OnlineFeatures


@pytest.fixture
def feast_home(tmp_path, monkeypatch):
    """A registry, SQLite online store and offline exports of this test's own."""
    monkeypatch.setenv("MARKETLAKE_FEAST_REGISTRY", str(tmp_path / "registry.db"))
    monkeypatch.setenv("MARKETLAKE_FEAST_ONLINE_STORE",
                       f'{{"type": "sqlite", "path": "{tmp_path / "online.db"}"}}')
    monkeypatch.setenv("MARKETLAKE_FEAST_OFFLINE_DIR", str(tmp_path / "offline"))
    return tmp_path


def test_an_unapplied_store_is_unavailable_not_an_error(feast_home):
    with pytest.raises(FeatureStoreUnavailable, match="ranking_v1"):
        OnlineFeatures().items(["some-product"])


def test_an_unreachable_online_store_is_unavailable(feast_home, monkeypatch):
    from feature_repo.store import apply, feature_store

    apply(feature_store())
    monkeypatch.setenv("MARKETLAKE_FEAST_ONLINE_STORE", '{"type": "redis", "connection_string": "127.0.0.1:9"}')
    with pytest.raises(FeatureStoreUnavailable, match="item_features"):
        OnlineFeatures().items(["some-product"])
    assert OnlineFeatures().items([]) == {}
