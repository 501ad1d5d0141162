"""A/B experiments on the serving surfaces: a running search experiment changes how a shopper's
searches are answered, by variant, says so in every response, and records the impressions (with
the context clients echo) in the shopper event log."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from serving.app import create_app
from serving.config import SearchSettings
from serving.experiments import ExperimentCache, ExperimentTag, experiments
from serving.impressions import ImpressionLog, Shopper
from serving.routes.search import STRATEGIES
from serving.search.service import SearchService
from serving.search.vectors import shared_embedder
from tests.factories import platform_admin
from tests.test_search import PRODUCTS, Catalog
from transactional.db import PLATFORM, session_scope
from serving.recommend.service import PERSONALISED_STRATEGY, POPULAR_STRATEGY
from transactional.models import Surface
from transactional.services.experiments import STRATEGIES as NAMED_STRATEGIES

EXPERIMENTS = "/v1/admin/experiments"


def _impressions() -> list[dict]:
    with session_scope(PLATFORM) as session:
        return [dict(row) for row in session.execute(text(
            "SELECT user_id, anonymous_id, session_id, product_id::text, position, query, context"
            " FROM shopper_events WHERE event_type = 'impression' ORDER BY context ->> 'request_id', position"))
            .mappings()]


def test_the_surfaces_implement_every_strategy_operators_may_name():
    assert set(NAMED_STRATEGIES[Surface.search]) == set(STRATEGIES)
    assert set(NAMED_STRATEGIES[Surface.recommendations]) == {PERSONALISED_STRATEGY, POPULAR_STRATEGY}


def test_impressions_beyond_the_queue_are_dropped_and_counted(db):
    catalog = Catalog()
    product = catalog.add("Electric kettle", *PRODUCTS["Electric kettle"])
    log = ImpressionLog(capacity=1)
    shopper = Shopper(user_id=None, anonymous_id="device-1", session_id="s-1")
    tag = ExperimentTag(experiment="exp", variant="a", model_version=None, strategy="hybrid", request_id="r-1")
    dropped_before = REGISTRY.get_sample_value("marketlake_serving_impressions_dropped_total") or 0
    log.record(shopper, tag, [product, product])
    log.record(shopper, tag, [product])  # the queue holds one response: this one is dropped
    log.record(shopper, ExperimentTag.of(None, "r-2"), [product])  # outside any experiment: nothing to record
    assert log.flush() == 2
    assert REGISTRY.get_sample_value("marketlake_serving_impressions_dropped_total") == dropped_before + 1
    assert [(row["position"], row["session_id"], row["context"]) for row in _impressions()] == [
        (0, "s-1", {"experiment": "exp", "variant": "a", "request_id": "r-1"}),
        (1, "s-1", {"experiment": "exp", "variant": "a", "request_id": "r-1"})]


@pytest.mark.slow
def test_a_search_experiment_answers_records_and_tags_by_variant(db, client, tmp_path):
    catalog = Catalog()
    for title, row in PRODUCTS.items():
        catalog.add(title, *row)
    service = SearchService(SearchSettings(), embedder=shared_embedder(), snapshot_dir=tmp_path)
    service.build()
    admin = platform_admin(client)
    created = client.post(EXPERIMENTS, headers=admin, json={
        "key": "search-lexical", "surface": "search",
        "variants": [{"name": "control", "share": "0.5", "strategy": "hybrid"},
                     {"name": "lexical", "share": "0.5", "strategy": "lexical"}]}).json()
    assert client.post(f"{EXPERIMENTS}/{created['id']}/start", headers=admin).status_code == 200

    with TestClient(create_app(service)) as api:
        experiments.refresh()  # the app re-reads every few seconds; the test does not wait for it
        devices = {}
        for n in range(100):
            assignment = experiments.assign(f"anon:device-{n}", "search")
            devices.setdefault(assignment.variant, f"device-{n}")
        answers = {variant: api.get("/v1/search", params={"q": "running shoes"}, headers={
            "X-Anonymous-ID": device, "X-Session-ID": f"session-{variant}", "X-Correlation-ID": f"req-{variant}"})
            for variant, device in devices.items()}
        outside = api.get("/v1/search", params={"q": "running shoes"})
    # the app's shutdown writes the impressions still queued

    for variant, response in answers.items():
        assert response.status_code == 200, response.text
        assert response.json()["experiment"] == {
            "experiment": "search-lexical", "variant": variant, "model_version": None,
            "strategy": "hybrid" if variant == "control" else "lexical", "request_id": f"req-{variant}",
            "event_context": {"experiment": "search-lexical", "variant": variant, "request_id": f"req-{variant}"}}
    matched = {variant: {tuple(item["matched_by"]) for item in response.json()["items"]}
               for variant, response in answers.items()}
    assert matched["lexical"] == {("lexical",)}
    assert ("semantic",) in matched["control"]  # hybrid also finds sneakers, by meaning
    assert outside.json()["experiment"]["experiment"] is None

    recorded = _impressions()
    for variant, response in answers.items():
        shown = [row for row in recorded if row["context"]["request_id"] == f"req-{variant}"]
        assert [row["product_id"] for row in shown] == [item["id"] for item in response.json()["items"]]
        assert [row["position"] for row in shown] == list(range(len(shown)))
        assert {(row["anonymous_id"], row["session_id"], row["query"], row["user_id"]) for row in shown} == {
            (devices[variant], f"session-{variant}", "running shoes", None)}
        assert shown[0]["context"] == response.json()["experiment"]["event_context"]
    assert len(recorded) == sum(len(response.json()["items"]) for response in answers.values())


def test_signed_in_shoppers_are_assigned_by_user_id():
    user = uuid.uuid4()
    assert Shopper(user, "device-1", None).key == str(user)
    assert Shopper(None, "device-1", None).key == "anon:device-1"
    assert Shopper(None, None, "s").key is None


@pytest.mark.slow
def test_simulated_shoppers_produce_experiment_data(live_server, tmp_path):
    """The demo's loop: the simulator fetches recommendations from the serving API, which records
    the impressions by variant; shoppers click some, echoing the list's context."""
    from tests import recommendation_world as worlds
    from tests.conftest import served
    from transactional.datagen.model import BehaviourModel
    from transactional.datagen.simulator import run_simulation
    from transactional.services.experiments import ExperimentIn, create_experiment, start_experiment

    saved = worlds.use_mlflow_store(tmp_path)
    try:
        worlds.build_world()
        search = worlds.search_service(tmp_path)
        recommendations = worlds.recommendation_service(search, "unregistered-model")
        with session_scope(PLATFORM) as session:
            experiment = create_experiment(session, ExperimentIn(
                key="reco-popular", surface="recommendations",
                variants=[{"name": "popular", "share": "0.5", "strategy": POPULAR_STRATEGY},
                          {"name": "personalised", "share": "0.5", "strategy": PERSONALISED_STRATEGY}]), None)
            start_experiment(session, experiment.id)
        with served(create_app(search, recommendations)) as serving_url:
            report = run_simulation(live_server, shoppers=3, duration=6, seed=5, search_url=serving_url,
                                    model=BehaviourModel(recommendation_click_probability=1.0), think_seconds=0.05)
    finally:
        worlds.restore_environment(saved)

    assert report.endpoints["GET /v1/recommendations"].requests >= 3, report.endpoints
    with session_scope(PLATFORM) as session:
        rows = session.execute(text(
            "SELECT event_type, user_id::text, session_id, context FROM shopper_events"
            " WHERE context ->> 'experiment' = 'reco-popular'")).all()
    shown = {row.context["request_id"]: row for row in rows if row.event_type == "impression"}
    clicks = [row for row in rows if row.event_type == "click"]
    assert shown and clicks
    assigned = ExperimentCache()
    assigned.refresh()
    for row in rows:  # each shopper always in the variant their id hashes to
        assert row.context["variant"] == assigned.assign(row.user_id, "recommendations").variant
    for click in clicks:  # a click names the list it came from, seen by the same shopper in the same session
        assert (shown[click.context["request_id"]].user_id, shown[click.context["request_id"]].session_id) == (
            click.user_id, click.session_id)
