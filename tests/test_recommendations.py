"""Recommendations through the serving API against a small marketplace whose shoppers each favour
one category (tests/recommendation_world.py): real PostgreSQL, an ALS model trained on the
shoppers' events and registered in MLflow (SQLite under a temporary directory), its FAISS index,
and the search index's catalogue following the change feed.

The world is built once for the module; tests that change it (stock, suspensions, events) put it
back or use shoppers and products of their own."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.search.vectors import shared_embedder
from tests import recommendation_world as worlds
from transactional.models import Role, TenantStatus
from transactional.services.security import issue_access_token

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
MODEL = "recs-test"


@pytest.fixture(scope="module")
def world(migrated_database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recommendations")
    saved = worlds.use_mlflow_store(folder)
    built = worlds.build_world()
    run_id = worlds.train_and_log(built)
    worlds.register(MODEL, run_id, validation=0.5)
    shared_embedder().embed(["warm up"])
    search = worlds.search_service(folder)
    recommendations = worlds.recommendation_service(search, MODEL)
    yield built, search, recommendations, run_id, folder
    worlds.restore_environment(saved)


@pytest.fixture(scope="module")
def api(world):
    _, search, recommendations, _, _ = world
    with TestClient(create_app(search, recommendations)) as client:
        yield client


@pytest.fixture
def follow(world):
    _, search, recommendations, _, _ = world
    return lambda: worlds.follow_feeds(search, recommendations)


def shopper_token(user_id: str) -> dict[str, str]:
    token, _ = issue_access_token(uuid.UUID(user_id), Role.buyer, None)
    return {"Authorization": f"Bearer {token}"}


def platform_token() -> dict[str, str]:
    token, _ = issue_access_token(uuid.uuid4(), Role.platform_admin, None)
    return {"Authorization": f"Bearer {token}"}


def listing(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def titles(body: dict) -> list[str]:
    return [item["title"] for item in body["items"]]


# -- personalisation --------------------------------------------------------------------------------


def test_a_known_shopper_gets_their_favourite_category_from_the_champion(world, api):
    built, *_ = world
    shopper = built.shoppers[0]
    body = listing(api.get("/v1/recommendations", params={"user_id": shopper, "k": 6}, headers=shopper_token(shopper)))
    favourite = built.favourite(shopper)
    assert body["model_version"] == "1" and body["strategy"] == "personalised" and body["degraded"] is False
    assert body["experiment"]["model_version"] == "1" and body["experiment"]["request_id"]
    in_favourite = [item for item in body["items"] if item["category"] == favourite]
    # The category cap (40% of 6 = 3) holds the favourite back from filling the whole list.
    assert len(body["items"]) == 6 and len(in_favourite) == 3
    assert body["items"][0]["category"] == favourite
    assert all(item["reason"] and item["reason_code"] for item in body["items"])


def test_a_shopper_sees_the_effect_of_their_session_within_a_refresh(world, api, follow):
    built, *_ = world
    device = f"dev-{uuid.uuid4().hex[:8]}"
    headers = {"X-Anonymous-ID": device}
    before = listing(api.get("/v1/recommendations", params={"k": 5}, headers=headers))
    assert before["model_version"] == "1"
    assert {item["reason_code"] for item in before["items"]} <= {"trending", "popular"}  # nothing known yet
    assert listing(api.get("/v1/recommendations", params={"k": 5}, headers=headers))["cached"] is True

    kettles = built.titles_in("home/kitchen")[:3]
    worlds.send_events([worlds.event("view", built.products[title], anonymous_id=device) for title in kettles])
    follow()
    after = listing(api.get("/v1/recommendations", params={"k": 5}, headers=headers))
    assert after["cached"] is False  # the shopper's events invalidated their cached list
    viewed = [item for item in after["items"] if item["reason_code"] == "viewed"]
    assert viewed and after["items"][0] == viewed[0] and viewed[0]["category"] == "home/kitchen"
    assert {item["based_on"] for item in viewed} <= {built.products[title] for title in kettles}
    assert viewed[0]["reason"] == f"because you viewed {built.title(viewed[0]['based_on'])}"
    assert not {item["id"] for item in after["items"]} & {built.products[title] for title in kettles}


def test_the_product_page_shows_similar_products_without_the_product_itself(world, api):
    built, *_ = world
    shoe = built.products["Shoe 1"]
    body = listing(api.get("/v1/recommendations", params={"context": "pdp", "item_id": shoe, "k": 4}))
    assert shoe not in [item["id"] for item in body["items"]]
    assert {item["category"] for item in body["items"]} == {"fashion/shoes"}
    assert body["items"][0]["reason"] == "similar to Shoe 1" and body["items"][0]["based_on"] == shoe
    similar = listing(api.get(f"/v1/items/{shoe}/similar", params={"k": 4}))
    assert similar["items"][0]["reason_code"] == "similar" and shoe not in [i["id"] for i in similar["items"]]


def test_cart_and_post_purchase_lists_follow_the_shoppers_cart_and_purchases(world, api, follow):
    built, *_ = world
    shopper = str(uuid.uuid4())  # new to the model: only the session speaks for them
    speaker, novel = built.products["Speaker 2"], built.products["Novel 3"]
    worlds.send_events([worlds.event("add_to_cart", speaker, user_id=shopper),
                        worlds.event("purchase", novel, user_id=shopper)])
    follow()
    headers = shopper_token(shopper)
    cart = listing(api.get("/v1/recommendations", params={"context": "cart", "k": 4}, headers=headers))
    assert cart["items"][0]["reason"] == "because you added Speaker 2 to your cart"
    assert speaker not in [item["id"] for item in cart["items"]]
    after = listing(api.get("/v1/recommendations", params={"context": "post_purchase", "k": 4}, headers=headers))
    assert after["items"][0]["reason"] == "because you bought Novel 3"
    assert after["items"][0]["category"] == "books/fiction"
    home = listing(api.get("/v1/recommendations", params={"k": 30}, headers=headers))
    assert novel not in [item["id"] for item in home["items"]]  # bought: not recommended again


# -- business rules -------------------------------------------------------------------------------


def test_out_of_stock_and_suspended_stores_products_are_never_recommended(world, api, follow):
    built, *_ = world
    shopper = built.shoppers[1]
    headers = shopper_token(shopper)
    favourite = built.favourite(shopper)
    first = listing(api.get("/v1/recommendations", params={"k": 30}, headers=headers))
    top = first["items"][0]["id"]
    assert top in [built.products[title] for title in built.titles_in(favourite)]
    worlds.set_stock(top, 0)
    try:
        follow()
        again = listing(api.get("/v1/recommendations", params={"k": 30}, headers=headers))
        assert top not in [item["id"] for item in again["items"]]
    finally:
        worlds.set_stock(top, 5)
    suspended = built.tenants["beta"]
    worlds.set_tenant_status(suspended, TenantStatus.suspended)
    try:
        follow()
        body = listing(api.get("/v1/recommendations", params={"k": 30}, headers=headers))
        assert body["items"] and str(suspended) not in {item["tenant_id"] for item in body["items"]}
    finally:
        worlds.set_tenant_status(suspended, TenantStatus.active)
        follow()


def test_storefront_scope_category_filter_and_diversity(world, api):
    built, *_ = world
    shopper = built.shoppers[2]
    headers = shopper_token(shopper)
    store = str(built.tenants["gamma"])
    scoped = listing(api.get("/v1/recommendations", params={"tenant_id": store, "k": 5}, headers=headers))
    assert scoped["items"] and {item["tenant_id"] for item in scoped["items"]} == {store}
    kitchen = listing(api.get("/v1/recommendations", params={"category": "home", "k": 5}, headers=headers))
    assert len(kitchen["items"]) == 5 and {item["category"] for item in kitchen["items"]} == {"home/kitchen"}
    mixed = listing(api.get("/v1/recommendations", params={"k": 6}, headers=headers))
    per_store = Counter(item["tenant_id"] for item in mixed["items"])
    per_category = Counter(item["category"] for item in mixed["items"])
    assert max(per_store.values()) <= 2 and max(per_category.values()) <= 3  # 30% and 40% of 6, rounded up


def test_cold_start_falls_back_through_category_store_and_trending(world, api, follow):
    built, *_ = world
    newcomer = worlds.add_product(built, "Shoe prototype", "fashion/shoes", "alpha")  # unknown to the model
    follow()
    page = listing(api.get("/v1/recommendations", params={"context": "pdp", "item_id": newcomer, "k": 3}))
    assert [item["reason"] for item in page["items"]] == ["popular in Shoes"] * 3
    store = listing(api.get("/v1/recommendations", params={"tenant_id": str(built.tenants["beta"]), "k": 3}))
    assert {item["reason"] for item in store["items"]} == {"popular at Beta Store"}
    anyone = listing(api.get("/v1/recommendations", params={"k": 3}))
    assert {item["reason_code"] for item in anyone["items"]} <= {"trending", "popular"}
    assert anyone["items"][0]["reason"] == "trending now"


# -- calls, errors, documentation -------------------------------------------------------------------


def test_batch_carousels_do_not_repeat_products(world, api):
    built, *_ = world
    shopper = built.shoppers[3]
    body = listing(api.post("/v1/recommendations/batch", headers=shopper_token(shopper), json={"carousels": [
        {"context": "homepage", "k": 5},
        {"context": "pdp", "item_id": built.products["Kettle 2"], "k": 5},
        {"context": "homepage", "k": 5, "category": "electronics"},
    ]}))
    ids = [item["id"] for carousel in body["carousels"] for item in carousel["items"]]
    assert [len(carousel["items"]) for carousel in body["carousels"]] == [5, 5, 5] and len(set(ids)) == 15
    assert body["carousels"][1]["items"][0]["reason"] == "similar to Kettle 2"
    missing = api.post("/v1/recommendations/batch", json={"carousels": [{"context": "homepage"}, {"context": "pdp"}]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "carousels.1.item_id"


@pytest.mark.parametrize(("params", "field"), [
    ({"context": "pdp"}, "item_id"),
    ({"context": "checkout"}, "context"),
    ({"k": 0}, "k"),
    ({"k": 101}, "k"),
    ({"item_id": "not-a-uuid", "context": "pdp"}, "item_id"),
    ({"tenant_id": "nope"}, "tenant_id"),
    ({"category": "Bad Path!"}, "category"),
    ({"user_id": "12"}, "user_id"),
])
def test_bad_parameters_are_422_problems_naming_the_field(api, params, field):
    response = api.get("/v1/recommendations", params=params)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == field


def test_unknown_items_are_404_and_other_shoppers_are_403(world, api):
    built, *_ = world
    unknown = str(uuid.uuid4())
    for response in (api.get("/v1/recommendations", params={"context": "pdp", "item_id": unknown}),
                     api.get(f"/v1/items/{unknown}/similar")):
        assert response.status_code == 404 and response.json()["errors"][0]["field"] == "item_id"
    someone = built.shoppers[4]
    assert api.get("/v1/recommendations", params={"user_id": someone}).status_code == 403
    assert api.get("/v1/recommendations", params={"user_id": someone},
                   headers=shopper_token(built.shoppers[5])).json()["errors"][0]["field"] == "user_id"
    assert api.get("/v1/recommendations", params={"user_id": someone}, headers=platform_token()).status_code == 200


def test_unknown_store_or_category_is_an_empty_list(api):
    assert listing(api.get("/v1/recommendations", params={"tenant_id": str(uuid.uuid4())}))["items"] == []
    assert listing(api.get("/v1/recommendations", params={"category": "garden"}))["items"] == []


def test_readiness_and_openapi_describe_recommendations(api):
    ready = listing(api.get("/readyz"))
    assert ready["recommendations"] == {"state": "ready", "model_version": "1"}
    paths = api.get("/openapi.json").json()["paths"]
    operation = paths["/v1/recommendations"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {
        "user_id", "context", "item_id", "k", "tenant_id", "category"}
    assert PROBLEM in operation["responses"]["4XX"]["content"]
    assert "post" in paths["/v1/recommendations/batch"] and "get" in paths["/v1/items/{item_id}/similar"]
