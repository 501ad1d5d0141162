"""Recommendations when things change or go away: a new champion swapped in under concurrent load
with no failed request; the model, its FAISS index, the registry and the feature store each taken
away; an experiment choosing the model version or the popular strategy; features from a real
Feast store changing the ranking."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.experiments import experiments
from serving.recommend import features
from serving.recommend.service import POPULAR_STRATEGY
from serving.search.vectors import shared_embedder
from tests import recommendation_world as worlds
from tests.conftest import served
from tests.test_recommendations import listing, platform_token, shopper_token
from transactional.db import PLATFORM, session_scope
from transactional.services.experiments import (
    ExperimentIn,
    create_experiment,
    start_experiment,
    stop_experiment,
)

pytestmark = pytest.mark.slow

MODEL = "recs-swap"


@pytest.fixture(scope="module")
def world(migrated_database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recommendations-resilience")
    saved = worlds.use_mlflow_store(folder)
    built = worlds.build_world(seed=11)
    run_id = worlds.train_and_log(built)
    worlds.register(MODEL, run_id, validation=0.5)
    shared_embedder().embed(["warm up"])
    search = worlds.search_service(folder)
    yield built, search, run_id, folder
    worlds.restore_environment(saved)


def _load(url: str, headers_of: list[dict], params_of: list[dict], stop: threading.Event, seen: list) -> None:
    """One client looping over its requests until told to stop, noting (status, model version)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            for headers, params in zip(headers_of, params_of, strict=True):
                response = client.get("/v1/recommendations", params=params, headers=headers)
                version = response.json().get("model_version") if response.status_code == 200 else None
                seen.append((response.status_code, version))


def test_a_new_champion_is_swapped_in_under_load_without_a_failed_request(world):
    built, search, run_id, _ = world
    recommendations = worlds.recommendation_service(search, MODEL, poll_seconds=0.3, refresh_seconds=0.5,
                                                    cache_seconds=0)
    shoppers = built.shoppers[:4]
    headers_of = [shopper_token(shopper) for shopper in shoppers] + [{}, {"X-Anonymous-ID": "swap-device"}]
    params_of = [{"k": 10}, {"k": 5, "context": "cart"}, {"k": 5, "category": "home"},
                 {"k": 5, "context": "post_purchase"},
                 {"context": "pdp", "item_id": built.products["Speaker 3"]}, {"k": 8}]
    stop = threading.Event()
    seen: list[list] = [[] for _ in range(4)]
    recommendations.start()
    try:
        with served(create_app(search, recommendations)) as url:
            clients = [threading.Thread(target=_load, args=(url, headers_of, params_of, stop, seen[index]))
                       for index in range(len(seen))]
            for client in clients:
                client.start()
            deadline = time.monotonic() + 300  # guards against hanging only: nothing here is timed
            while sum(map(len, seen)) < 60 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert worlds.register(MODEL, run_id, validation=0.6) == "2"
            while not all(any(version == "2" for _, version in client[-5:]) for client in seen) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            for client in clients:
                client.join()
    finally:
        stop.set()
        recommendations.stop()
    answers = [answer for client in seen for answer in client]
    assert {status for status, _ in answers} == {200}, "no request may fail during the swap"
    for client in seen:  # each client saw version 1, then version 2, and never 1 again once swapped
        versions = [version for _, version in client]
        first_new = versions.index("2")
        assert versions[0] == "1" and set(versions[:first_new]) == {"1"} and set(versions[first_new:]) == {"2"}
    assert recommendations.model_version == "2" and recommendations.state == "ready"


def test_without_a_model_lists_are_popular_and_flagged_degraded(world):
    built, search, _, _ = world
    recommendations = worlds.recommendation_service(search, "never-registered")
    assert recommendations.ready and recommendations.state == "no champion registered"
    with TestClient(create_app(search, recommendations)) as api:
        body = listing(api.get("/v1/recommendations", params={"context": "pdp", "k": 4,
                                                              "item_id": built.products["Kettle 1"]}))
        assert body["degraded"] is True and body["model_version"] is None and body["strategy"] == "popular"
        assert body["degraded_reasons"] == ["model_unavailable: no champion registered"]
        assert [item["reason"] for item in body["items"]] == ["popular in Kitchen"] * 4
        assert api.get("/readyz").json()["recommendations"] == {"state": "no champion registered",
                                                                "model_version": None}


def _artifact_file(run_id: str, path: str) -> Path:
    from mlflow import MlflowClient

    from models.tracking import tracking_uri

    return Path(urlparse(MlflowClient(tracking_uri()).get_run(run_id).info.artifact_uri).path) / path


def test_a_version_without_its_faiss_index_is_not_served_and_lists_degrade(world):
    built, search, _, _ = world
    broken = worlds.train_and_log(built)
    _artifact_file(broken, "faiss/items.faiss").unlink()
    worlds.register("recs-no-index", broken, validation=0.5)
    recommendations = worlds.recommendation_service(search, "recs-no-index")
    assert recommendations.ready and recommendations.model_version is None
    with TestClient(create_app(search, recommendations)) as api:
        body = listing(api.get("/v1/recommendations", headers=shopper_token(built.shoppers[0]), params={"k": 3}))
    assert body["degraded"] is True and body["strategy"] == "popular" and len(body["items"]) == 3
    assert body["degraded_reasons"][0].startswith("model_unavailable: version 1:")
    assert "faiss/items.faiss" in body["degraded_reasons"][0]


def test_a_registry_outage_keeps_the_loaded_champion_serving(world, monkeypatch):
    built, search, _, _ = world
    recommendations = worlds.recommendation_service(search, MODEL)
    serving_version = recommendations.model_version
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(Exception):  # noqa: B017 (whatever MLflow raises for an unreachable server)
        recommendations.check_registry()
    with TestClient(create_app(search, recommendations)) as api:
        body = listing(api.get("/v1/recommendations", headers=shopper_token(built.shoppers[0])))
    assert body["model_version"] == serving_version and body["degraded"] is False


def test_an_experiment_serves_its_variants_model_version_or_the_popular_strategy(world):
    built, search, run_id, _ = world
    worlds.register("recs-experiment", run_id, validation=0.5)  # version 1: the champion
    worlds.register("recs-experiment", run_id, validation=0.4)  # version 2: a challenger
    recommendations = worlds.recommendation_service(search, "recs-experiment")
    with session_scope(PLATFORM) as session:
        experiment = create_experiment(session, ExperimentIn(
            key=f"reco-{uuid.uuid4().hex[:6]}", surface="recommendations",
            variants=[{"name": "challenger", "share": "0.5", "model_version": "2"},
                      {"name": "popular", "share": "0.5", "strategy": POPULAR_STRATEGY}]), None)
        start_experiment(session, experiment.id)
    experiments.refresh()
    try:
        with TestClient(create_app(search, recommendations)) as api:
            def ask(shopper: str) -> dict:
                return listing(api.get("/v1/recommendations", params={"user_id": shopper}, headers=platform_token()))

            first = {shopper: ask(shopper) for shopper in built.shoppers[:20]}
            variants = {shopper: body["experiment"]["variant"] for shopper, body in first.items()}
            assert set(variants.values()) == {"challenger", "popular"}
            for shopper, body in first.items():
                if variants[shopper] == "popular":
                    assert (body["strategy"], body["model_version"], body["degraded"]) == ("popular", None, False)
                else:  # the champion serves until the challenger, asked for, is loaded
                    assert (body["strategy"], body["model_version"]) == ("personalised", "1")
            recommendations.check_registry()  # what the background thread does next
            challenger = next(shopper for shopper, variant in variants.items() if variant == "challenger")
            body = ask(challenger)
            assert body["model_version"] == "2"
            assert body["experiment"]["event_context"] | {"request_id": None} == {
                "experiment": experiment.key, "variant": "challenger", "model_version": "2", "request_id": None}
    finally:
        with session_scope(PLATFORM) as session:
            stop_experiment(session, experiment.id)
        experiments.refresh()


@pytest.fixture
def feast_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETLAKE_FEAST_REGISTRY", str(tmp_path / "registry.db"))
    monkeypatch.setenv("MARKETLAKE_FEAST_ONLINE_STORE",
                       json.dumps({"type": "sqlite", "path": str(tmp_path / "online.db")}))
    return tmp_path


def test_feature_store_signals_rerank_and_its_absence_is_flagged(world, feast_store, monkeypatch):
    from datetime import UTC, datetime

    import pandas as pd

    from feature_repo.feature_views.item import item_features
    from feature_repo.online import OnlineFeatures
    from feature_repo.store import apply, feature_store

    built, search, _, _ = world
    page = {"context": "pdp", "item_id": built.products["Shoe 2"], "k": 6}
    unapplied = worlds.recommendation_service(search, MODEL, features=OnlineFeatures())
    with TestClient(create_app(search, unapplied)) as api:
        without = listing(api.get("/v1/recommendations", params=page))
    assert without["degraded"] is True and without["model_version"] is not None
    assert without["degraded_reasons"][0].startswith("feature_store_unavailable:")
    assert without["items"][0]["reason"] == "similar to Shoe 2"  # still the model's list

    store = feature_store()
    apply(store)
    last = without["items"][-1]["id"]  # the last of the list sells best by far
    names = [feature.name for feature in item_features.features]
    store.write_to_online_store("item_features", pd.DataFrame([
        dict.fromkeys(names) | {"product_id": product_id, "feature_timestamp": datetime.now(UTC),
                                "popularity_7d": 500.0 if product_id == last else 1.0,
                                "conversion_rate_30d": 0.4 if product_id == last else 0.01}
        for product_id in built.products.values()]))
    available = worlds.recommendation_service(search, MODEL, features=OnlineFeatures(),
                                              feature_timeout_seconds=30)  # a busy test machine: not timed here
    with TestClient(create_app(search, available)) as api:
        ranked = listing(api.get("/v1/recommendations", params=page))
    assert ranked["degraded"] is False
    assert [item["id"] for item in ranked["items"]].index(last) < len(without["items"]) - 1

    # The service that saw the store fail asks it again in the background, not on a request's time.
    monkeypatch.setattr(features, "RETRY_SECONDS", 0.0)
    with TestClient(create_app(search, unapplied)) as api:
        assert listing(api.get("/v1/recommendations", params=page))["degraded"] is True  # sends the retry
        deadline = time.monotonic() + 60  # guards against hanging only: nothing here is timed
        while (recovered := listing(api.get("/v1/recommendations", params=page)))["degraded"] \
                and time.monotonic() < deadline:
            time.sleep(0.1)
    assert recovered["degraded"] is False
    assert [item["id"] for item in recovered["items"]] == [item["id"] for item in ranked["items"]]
