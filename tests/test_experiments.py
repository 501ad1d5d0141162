"""A/B experiments: operators define, start and stop them through the admin API; serving processes
assign users deterministically from an in-memory snapshot refreshed from PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from serving.experiments import Assignment, ExperimentCache, ExperimentTag, bucket
from tests.factories import buyer, platform_admin, seller
from transactional.db import PLATFORM, session_scope
from transactional.services.experiments import running_experiments

PATH = "/v1/admin/experiments"


SEARCH_VARIANTS = [{"name": "control", "share": "0.5", "strategy": "hybrid"},
                   {"name": "lexical", "share": "0.5", "strategy": "lexical"}]


def _definition(key: str = "reco-v2", surface: str = "recommendations", **changes) -> dict:
    return {"key": key, "surface": surface, "description": "two-tower vs popularity",
            "variants": [{"name": "control", "share": "0.5", "strategy": "popular"},
                         {"name": "treatment", "share": "0.5", "model_version": "7"}], **changes}


@pytest.fixture
def admin(client) -> dict[str, str]:
    return platform_admin(client)


def _create(client, admin, **changes) -> dict:
    response = client.post(PATH, json=_definition(**changes), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def _fields(response) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["field"] for error in response.json()["errors"]]


# --- the admin API -----------------------------------------------------------------------------

def test_an_operator_defines_starts_and_stops_an_experiment(client, admin):
    created = _create(client, admin)
    assert created["status"] == "draft" and created["started_at"] is None
    assert [v["name"] for v in created["variants"]] == ["control", "treatment"]

    started = client.post(f"{PATH}/{created['id']}/start", headers=admin)
    assert started.status_code == 200 and started.json()["status"] == "running"
    listed = client.get(PATH, params={"status": "running"}, headers=admin).json()
    assert [experiment["key"] for experiment in listed] == ["reco-v2"]

    stopped = client.post(f"{PATH}/{created['id']}/stop", headers=admin)
    assert stopped.json()["status"] == "stopped" and stopped.json()["stopped_at"] is not None
    restarted = client.post(f"{PATH}/{created['id']}/start", headers=admin)
    assert restarted.status_code == 409 and _fields(restarted) == ["status"]
    assert client.get(f"{PATH}/{created['id']}", headers=admin).json()["status"] == "stopped"


def test_changes_are_audited_with_the_operator(client, admin):
    created = _create(client, admin)
    client.post(f"{PATH}/{created['id']}/start", headers=admin)
    with session_scope(PLATFORM) as session:
        actions = session.execute(text("SELECT action, actor_scope FROM audit_log"
                                       " WHERE entity_type = 'experiment' AND entity_id = :id"
                                       " ORDER BY occurred_at"), {"id": created["id"]}).all()
    assert actions == [("created", "platform"), ("updated", "platform")]


def test_only_one_experiment_runs_per_surface(client, admin):
    first, second = _create(client, admin, key="a"), _create(client, admin, key="b")
    search = _create(client, admin, key="c", surface="search", variants=SEARCH_VARIANTS)
    assert client.post(f"{PATH}/{first['id']}/start", headers=admin).status_code == 200
    refused = client.post(f"{PATH}/{second['id']}/start", headers=admin)
    assert refused.status_code == 409 and _fields(refused) == ["surface"]
    assert "'a'" in refused.json()["detail"]
    assert client.post(f"{PATH}/{search['id']}/start", headers=admin).status_code == 200
    client.post(f"{PATH}/{first['id']}/stop", headers=admin)
    assert client.post(f"{PATH}/{second['id']}/start", headers=admin).status_code == 200


def _variant(name: str, share: str, **serves) -> dict:
    return {"name": name, "share": share, **serves}


@pytest.mark.parametrize(("variants", "fields"), [
    ([_variant("a", "0.5", strategy="popular"), _variant("b", "0.4", strategy="personalised")], ["variants"]),
    ([_variant("a", "0.5", strategy="popular"), _variant("a", "0.5", strategy="personalised")], ["variants.1.name"]),
    ([_variant("a", "0.5", strategy="popular"), _variant("b", "0.5")], ["variants.1.model_version"]),
    ([_variant("a", "1", strategy="popular")], ["variants"]),
    ([_variant("a", "0", strategy="popular"), _variant("b", "1", strategy="personalised")], ["variants.0.share"]),
    ([_variant("a", "0.33333", strategy="popular"), _variant("b", "0.66667", strategy="personalised")],
     ["variants.0.share", "variants.1.share"]),
    ([_variant("a", "0.5", strategy="random"), _variant("b", "0.5", model_version="3")], ["variants.0.strategy"]),
])
def test_an_invalid_split_is_refused_naming_the_field(client, admin, variants, fields):
    response = client.post(PATH, json=_definition(variants=variants), headers=admin)
    assert response.status_code == 422, response.text
    assert _fields(response) == fields


def test_search_variants_name_a_strategy_the_search_route_implements(client, admin):
    response = client.post(PATH, headers=admin, json=_definition(surface="search", variants=[
        SEARCH_VARIANTS[0], {"name": "v2", "share": "0.5", "model_version": "7"}]))
    assert response.status_code == 422 and _fields(response) == ["variants.1.strategy"]
    assert _create(client, admin, surface="search", variants=SEARCH_VARIANTS)["variants"] == [
        {**variant, "share": variant["share"], "model_version": None} for variant in SEARCH_VARIANTS]


def test_bad_keys_surfaces_and_duplicates_are_refused(client, admin):
    assert _fields(client.post(PATH, json=_definition(key="Has Spaces"), headers=admin)) == ["key"]
    assert _fields(client.post(PATH, json=_definition(surface="checkout"), headers=admin)) == ["surface"]
    _create(client, admin)
    taken = client.post(PATH, json=_definition(), headers=admin)
    assert taken.status_code == 409 and _fields(taken) == ["key"]
    missing = client.post(f"{PATH}/{uuid.uuid4()}/start", headers=admin)
    assert missing.status_code == 404 and _fields(missing) == ["experiment_id"]


def test_only_platform_admins_manage_experiments(client):
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers=buyer(client)).status_code == 403
    assert client.post(PATH, json=_definition(), headers=seller(client)[1]).status_code == 403


# --- assignment --------------------------------------------------------------------------------

def test_buckets_are_stable_uniform_and_independent_per_experiment():
    users = [f"user-{n}" for n in range(20_000)]
    points = [bucket("exp-a", user) for user in users]
    assert points == [bucket("exp-a", user) for user in users]
    assert all(0 <= point < 1 for point in points)
    deciles = Counter(int(point * 10) for point in points)
    assert all(1_850 <= deciles[d] <= 2_150 for d in range(10)), deciles
    # another experiment re-splits the same users: its halves cut across this one's
    first_half = {user for user, point in zip(users, points, strict=True) if point < 0.5}
    overlap = sum(bucket("exp-b", user) < 0.5 for user in first_half) / len(first_half)
    assert 0.47 < overlap < 0.53


def _start(client, admin, **changes) -> dict:
    created = _create(client, admin, **changes)
    assert client.post(f"{PATH}/{created['id']}/start", headers=admin).status_code == 200
    return created


def test_the_cache_assigns_by_share_from_the_running_experiments(client, admin):
    cache = ExperimentCache()
    cache.refresh()
    assert cache.assign("user-1", "recommendations") is None
    created = _start(client, admin, variants=[
        {"name": "control", "share": "0.8", "strategy": "popular"},
        {"name": "treatment", "share": "0.2", "model_version": "12"}])
    assert cache.assign("user-1", "recommendations") is None  # nothing changes before a refresh
    cache.refresh()
    assignments = [cache.assign(f"user-{n}", "recommendations") for n in range(10_000)]
    assert assignments == [cache.assign(f"user-{n}", "recommendations") for n in range(10_000)]
    counts = Counter(assignment.variant for assignment in assignments)
    assert 1_850 <= counts["treatment"] <= 2_150, counts
    assert Assignment("reco-v2", "treatment", "12", None) in assignments
    assert Assignment("reco-v2", "control", None, "popular") in assignments
    assert cache.assign("user-1", "search") is None
    assert cache.assign(None, "recommendations") is None and cache.assign("", "recommendations") is None

    client.post(f"{PATH}/{created['id']}/stop", headers=admin)
    cache.refresh()
    assert cache.assign("user-1", "recommendations") is None


def test_a_failed_refresh_keeps_the_last_snapshot(client, admin):
    _start(client, admin)
    reads = []

    def database_then_outage():
        reads.append(1)
        if len(reads) > 1:
            raise ConnectionError("database down")
        with session_scope(PLATFORM) as session:
            return running_experiments(session)

    cache = ExperimentCache(database_then_outage)
    cache.refresh()
    before = cache.assign("user-1", "recommendations")
    cache.start(refresh_seconds=0.01)
    while len(reads) < 3:
        time.sleep(0.01)
    cache.stop()
    assert before is not None and cache.assign("user-1", "recommendations") == before


def test_the_tag_carries_the_event_context_keys():
    tag = ExperimentTag.of(Assignment("reco-v2", "treatment", "12", None), "req-1")
    assert tag.event_context == {"experiment": "reco-v2", "variant": "treatment", "model_version": "12",
                                 "request_id": "req-1"}
    assert ExperimentTag.of(None, "req-2").event_context == {"request_id": "req-2"}


# --- the CLI -----------------------------------------------------------------------------------

def test_operators_run_an_experiment_from_the_cli(db):
    from typer.testing import CliRunner

    from transactional.experiments_cli import experiments_app

    runner = CliRunner()
    created = runner.invoke(experiments_app, ["create", "search-lexical", "--surface", "search",
                                              "--variant", "control:0.5:strategy=hybrid",
                                              "--variant", "lexical:0.5:strategy=lexical"])
    assert created.exit_code == 0, created.output
    assert runner.invoke(experiments_app, ["start", "search-lexical"]).exit_code == 0
    listed = runner.invoke(experiments_app, ["list"])
    assert "search-lexical" in listed.output and "running" in listed.output

    bad_split = runner.invoke(experiments_app, ["create", "other", "--surface", "search", "--variant",
                                                "a:0.6:strategy=hybrid", "--variant", "b:0.6:strategy=lexical"])
    assert bad_split.exit_code == 1 and "variants" in bad_split.output
    malformed = runner.invoke(experiments_app, ["create", "other", "--surface", "search", "--variant", "a=0.5"])
    assert malformed.exit_code == 2 and "--variant" in malformed.output
    assert runner.invoke(experiments_app, ["stop", "nope"]).exit_code == 1
    assert runner.invoke(experiments_app, ["stop", "search-lexical"]).exit_code == 0
    with session_scope(PLATFORM) as session:
        assert session.scalar(text("SELECT status FROM experiments WHERE key = 'search-lexical'")) == "stopped"
