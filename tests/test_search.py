"""Product search against a tiny catalog in PostgreSQL with known answers, through the serving API.

The index is built from the database and kept fresh from the change feed exactly as in
production; the real MiniLM model embeds (loaded once per test session)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from serving.app import create_app
from serving.config import SearchSettings
from serving.search.engine import Retrieval, SearchRequest
from serving.search.evaluation import read_labelled_set
from serving.search.labelled_export import export_session_set
from serving.search.service import SearchService
from serving.search.vectors import shared_embedder
from tests.recommendation_world import add_store
from transactional.db import PLATFORM, owner_engine, session_scope
from transactional.models import (
    Category,
    InventoryLevel,
    Product,
    ProductStatus,
    Role,
    Sku,
    Tenant,
    TenantStatus,
    User,
)
from transactional.services.catalog import ProductData, SkuData, create_product, ensure_categories
from transactional.services.security import issue_access_token

pytestmark = pytest.mark.slow

# title -> (store, brand, category, price, colour, units in stock)
PRODUCTS = {
    "Red running shoe": ("swift", "Swift", "fashion/shoes/running", "80.00", "red", 5),
    "Blue running shoe": ("swift", "Swift", "fashion/shoes/running", "75.00", "blue", 5),
    "White leather sneakers": ("urban", "Urbano", "fashion/shoes/sneakers", "60.00", "white", 5),
    "Trail hiking boots": ("urban", "Peak", "fashion/shoes/boots", "120.00", "brown", 0),
    "Electric kettle": ("home", "Hearth", "home/kitchen", "35.00", None, 5),
    "Stainless steel kettle": ("home", "Hearth", "home/kitchen", "25.00", None, 5),
    "Red cotton t-shirt": ("swift", "Norde", "fashion/t-shirts", "15.00", "red", 5),
    "Wireless headphones": ("home", "Sonique", "electronics/headphones", "85.00", None, 5),
    "Desk lamp": ("home", "Lumina", "home/lighting", "40.00", None, 5),
}
DESCRIPTIONS = {
    "Red running shoe": "Lightweight road running shoe with a cushioned sole.",
    "White leather sneakers": "Everyday low-top sneakers.",
    "Electric kettle": "1.7 litre kettle that boils water fast.",
}


class Catalog:
    def __init__(self) -> None:
        self.tenants: dict[str, uuid.UUID] = {}
        self.warehouses: dict[str, uuid.UUID] = {}
        self.products: dict[str, str] = {}
        self.skus: dict[str, uuid.UUID] = {}

    def store(self, name: str) -> uuid.UUID:
        if name not in self.tenants:
            add_store(self, name)
        return self.tenants[name]

    def add(self, title: str, store: str, brand: str, category: str, price: str, colour: str | None, stock: int,
            status: ProductStatus = ProductStatus.active) -> str:
        tenant_id = self.store(store)
        with session_scope(PLATFORM) as session:
            category_id = ensure_categories(session, [category])[category]
            product_id = create_product(session, tenant_id=tenant_id, actor_user_id=None, data=ProductData(
                title=title, description=DESCRIPTIONS.get(title, ""), brand=brand, category_id=category_id,
                attributes={"colour": colour} if colour else {}, status=status,
                skus=[SkuData(sku_code=f"SKU-{uuid.uuid4().hex[:8]}", price=Decimal(price), currency="USD")],
            ))
            sku_id = session.scalar(select(Sku.id).where(Sku.product_id == product_id))
            session.add(InventoryLevel(tenant_id=tenant_id, sku_id=sku_id, warehouse_id=self.warehouses[store],
                                       available=stock, reserved=0))
        self.products[title], self.skus[title] = str(product_id), sku_id
        return str(product_id)


@pytest.fixture
def catalog(db) -> Catalog:
    built = Catalog()
    for title, (store, brand, category, price, colour, stock) in PRODUCTS.items():
        built.add(title, store, brand, category, price, colour, stock)
    built.add("Red running shoe prototype", "swift", "Swift", "fashion/shoes/running", "99.00", "red", 5,
              status=ProductStatus.draft)
    with owner_engine().begin() as connection:
        connection.execute(update(Product).where(Product.title == "Blue running shoe")
                           .values(rating_avg=Decimal("4.80"), rating_count=40))
        connection.execute(update(Product).where(Product.title == "White leather sneakers")
                           .values(rating_avg=Decimal("3.10"), rating_count=12))
    return built


@pytest.fixture
def service(catalog, tmp_path) -> SearchService:
    search = SearchService(SearchSettings(suggest_min_sessions=2), embedder=shared_embedder(),
                           snapshot_dir=tmp_path / "search")
    search.build()
    return search


@pytest.fixture
def api(service) -> TestClient:
    with TestClient(create_app(service)) as client:
        yield client


def titles(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


# -- relevance ------------------------------------------------------------------------------------


def test_the_red_running_shoe_comes_first_for_red_running_shoes(api):
    found = titles(api.get("/v1/search", params={"q": "red running shoes"}))
    assert found[0] == "Red running shoe"
    assert "Red running shoe prototype" not in found  # drafts are never listed
    assert "Electric kettle" not in found


def test_a_typo_still_finds_the_shoe(api):
    body = api.get("/v1/search", params={"q": "runnign shoes"}).json()
    assert body["items"][0]["title"] in {"Red running shoe", "Blue running shoe"}
    assert "lexical" in body["items"][0]["matched_by"]
    assert body["relaxed"]["applied"] is False


def test_lexical_retrieval_alone_needs_every_word(service):
    result = service.engine.search(SearchRequest(query="red shoe", retrieval=Retrieval.lexical))
    assert [hit.document.title for hit in result.hits] == ["Red running shoe"]


def test_semantic_retrieval_finds_sneakers_for_running_shoes(service):
    result = service.engine.search(SearchRequest(query="running shoes", retrieval=Retrieval.semantic))
    found = [hit.document.title for hit in result.hits]
    assert "White leather sneakers" in found
    assert "Electric kettle" not in found


def test_meaning_without_shared_words_is_found(api):
    body = api.get("/v1/search", params={"q": "water boiler"}).json()
    assert body["items"][0]["title"] in {"Electric kettle", "Stainless steel kettle"}
    assert body["items"][0]["matched_by"] == ["semantic"]


# -- filters, facets, sorting, paging -------------------------------------------------------------


def test_filters_combine(api, catalog):
    def search(**params):
        return set(titles(api.get("/v1/search", params={"q": "shoes", **params})))

    assert search(brand="swift") == {"Red running shoe", "Blue running shoe"}
    assert search(category="fashion/shoes/running") == {"Red running shoe", "Blue running shoe"}
    assert search(tenant_id=str(catalog.tenants["urban"])) == {"White leather sneakers", "Trail hiking boots"}
    assert search(price_min=70, price_max=100) == {"Red running shoe", "Blue running shoe"}
    assert search(rating_min=4) == {"Blue running shoe"}
    assert search(in_stock="true") == {"Red running shoe", "Blue running shoe", "White leather sneakers"}
    assert search(in_stock="false") == {"Trail hiking boots"}
    assert search(brand=["urbano", "PEAK"]) == {"White leather sneakers", "Trail hiking boots"}


def test_facets_count_the_results(api, catalog):
    facets = api.get("/v1/search", params={"category": "fashion/shoes"}).json()["facets"]
    assert {f["value"]: f["count"] for f in facets["category"]} == {
        "fashion": 4, "fashion/shoes": 4, "fashion/shoes/running": 2, "fashion/shoes/sneakers": 1,
        "fashion/shoes/boots": 1,
    }
    assert {f["value"]: f["count"] for f in facets["brand"]} == {"Swift": 2, "Urbano": 1, "Peak": 1}
    assert {(f["value"], f["label"], f["count"]) for f in facets["tenant"]} == {
        (str(catalog.tenants["swift"]), "Swift Store", 2), (str(catalog.tenants["urban"]), "Urban Store", 2)}
    assert {f["value"]: f["count"] for f in facets["price"] if f["count"]} == {"50-100": 3, "100-250": 1}
    assert {f["value"]: f["count"] for f in facets["rating"]} == {"4": 1, "3": 2, "2": 2, "1": 2}


def test_sort_orders(api):
    def order(sort):
        return titles(api.get("/v1/search", params={"category": "fashion/shoes", "sort": sort}))

    assert order("price_asc") == ["White leather sneakers", "Blue running shoe", "Red running shoe", "Trail hiking boots"]
    assert order("price_desc") == list(reversed(order("price_asc")))
    assert order("rating")[:2] == ["Blue running shoe", "White leather sneakers"]
    assert order("newest") == ["Trail hiking boots", "White leather sneakers", "Blue running shoe", "Red running shoe"]


def test_cursor_pages_cover_every_result_once(api):
    first = api.get("/v1/search", params={"q": "shoes", "limit": 2}).json()
    seen, cursor = [item["id"] for item in first["items"]], first["next_cursor"]
    while cursor:
        page = api.get("/v1/search", params={"q": "shoes", "limit": 2, "cursor": cursor}).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == first["total"] >= 4


def test_a_cursor_only_continues_its_own_search(api):
    cursor = api.get("/v1/search", params={"q": "shoes", "limit": 1}).json()["next_cursor"]
    other = api.get("/v1/search", params={"q": "kettle", "limit": 1, "cursor": cursor})
    assert other.status_code == 400
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["errors"][0]["field"] == "cursor"
    assert api.get("/v1/search", params={"q": "shoes", "cursor": "not-a-cursor"}).json()["errors"][0]["field"] == "cursor"


# -- zero results, suggestions, personalisation ---------------------------------------------------


def test_without_results_every_word_is_no_longer_required(service):
    result = service.engine.search(SearchRequest(query="red kettle", retrieval=Retrieval.lexical))  # none is both
    assert result.relaxations == ["any_words"]
    assert {"Electric kettle", "Red running shoe", "Red cotton t-shirt"} <= {hit.document.title for hit in result.hits}


def test_without_results_the_filters_are_dropped_and_the_response_says_so(api):
    body = api.get("/v1/search", params={"q": "kettle", "brand": "Swift"}).json()  # Swift sells no kettle
    assert body["relaxed"] == {"applied": True, "steps": ["any_words", "dropped_filters"], "dropped_filters": ["brand"]}
    assert body["items"][0]["title"] in {"Electric kettle", "Stainless steel kettle"}
    assert api.get("/v1/search", params={"q": "kettle"}).json()["relaxed"]["applied"] is False


def test_nonsense_finds_nothing_even_relaxed(api):
    body = api.get("/v1/search", params={"q": "xqzvwk"}).json()
    assert body["items"] == [] and body["total"] == 0


def _search_events(sessions: int, query: str, user_id: uuid.UUID | None = None, product_id: str | None = None,
                   event_type: str = "search") -> None:
    with owner_engine().begin() as connection:
        connection.execute(text(
            "INSERT INTO shopper_events (event_id, event_type, user_id, anonymous_id, session_id, occurred_at,"
            " product_id, query, context)"
            " SELECT gen_random_uuid(), :type, :user, 'anon', 's-' || g || '-' || :query, now(), :product, :query, '{}'"
            " FROM generate_series(1, :sessions) AS g"
        ), {"type": event_type, "user": user_id, "query": query, "product": product_id, "sessions": sessions})


def test_suggest_completes_popular_queries_and_titles(api, service):
    _search_events(3, "running shoes")
    _search_events(1, "ruby necklace for my sister anna")  # one session only: private, never suggested
    service.refresh()
    suggestions = api.get("/v1/search/suggest", params={"q": "ru"}).json()["suggestions"]
    assert suggestions[0] == {"text": "running shoes", "kind": "query", "product_id": None}
    assert all("anna" not in suggestion["text"] for suggestion in suggestions)

    products = api.get("/v1/search/suggest", params={"q": "stainless st"}).json()["suggestions"]
    assert [(s["text"], s["kind"]) for s in products] == [("Stainless steel kettle", "product")]


def _shopper(catalog, liked: list[str]) -> dict[str, str]:
    with session_scope(PLATFORM) as session:
        user = User(email=f"{uuid.uuid4().hex[:10]}@shop.example.com", password_hash="x", role=Role.buyer)
        session.add(user)
        session.flush()
        user_id = user.id
    for title in liked:
        _search_events(1, "", user_id=user_id, product_id=catalog.products[title], event_type="purchase")
    return {"Authorization": f"Bearer {issue_access_token(user_id, Role.buyer, None)[0]}"}


def test_results_are_personalised_for_the_signed_in_shopper(api, catalog):
    runner = _shopper(catalog, ["Blue running shoe", "White leather sneakers"])
    tees = _shopper(catalog, ["Red cotton t-shirt"])
    # "red" matches the shoe and the t-shirt about equally; the shopper's history decides.
    for_runner = titles(api.get("/v1/search", params={"q": "red"}, headers=runner))
    for_tees = titles(api.get("/v1/search", params={"q": "red"}, headers=tees))
    assert for_runner.index("Red running shoe") < for_runner.index("Red cotton t-shirt")
    assert for_tees.index("Red cotton t-shirt") < for_tees.index("Red running shoe")


# -- freshness: the change feed -------------------------------------------------------------------


def test_catalog_changes_are_searchable_after_a_refresh_without_rebuild(api, service, catalog):
    index_before = service.engine.index
    new_id = catalog.add("Green trail running shoe", "urban", "Peak", "fashion/shoes/running", "95.00", "green", 3)
    assert "Green trail running shoe" not in titles(api.get("/v1/search", params={"q": "green shoe"}))

    with session_scope(PLATFORM) as session:
        session.get(Sku, catalog.skus["Red running shoe"]).price = Decimal("55.00")
        session.execute(update(Product).where(Product.id == uuid.UUID(catalog.products["Red running shoe"]))
                        .values(min_price=Decimal("55.00")))
        session.execute(update(InventoryLevel).where(InventoryLevel.sku_id == catalog.skus["Blue running shoe"])
                        .values(available=0))
        session.execute(update(Product).where(Product.id == uuid.UUID(catalog.products["Desk lamp"]))
                        .values(status=ProductStatus.inactive))
    stats = service.refresh()

    assert service.engine.index is index_before
    assert stats.indexed >= 3 and stats.removed == 1
    found = api.get("/v1/search", params={"q": "green shoe"}).json()["items"]
    assert found[0]["id"] == new_id
    red = next(i for i in api.get("/v1/search", params={"q": "red running"}).json()["items"] if i["title"] == "Red running shoe")
    assert red["price"] == 55.0
    assert "Blue running shoe" not in titles(api.get("/v1/search", params={"q": "shoe", "in_stock": "true"}))
    assert "Desk lamp" not in titles(api.get("/v1/search", params={"q": "lamp"}))


def test_a_renamed_product_is_no_longer_found_by_its_old_words(service, catalog):
    lamp = catalog.products["Desk lamp"]
    with session_scope(PLATFORM) as session:
        session.execute(update(Product).where(Product.id == uuid.UUID(lamp)).values(title="Reading light"))
    service.refresh()

    def lexical(query: str) -> list[str]:
        result = service.engine.search(SearchRequest(query, retrieval=Retrieval.lexical, facets=False))
        return [hit.document.id for hit in result.hits]

    assert lexical("reading light") == [lamp]
    assert lamp not in lexical("desk")


def test_domain_events_in_the_outbox_do_not_stall_the_refresh(api, service, catalog):
    with owner_engine().begin() as connection:
        connection.execute(text(
            "INSERT INTO outbox (event_type, schema_version, aggregate_type, aggregate_id, payload)"
            " VALUES ('inventory.low_stock', 1, 'sku', :sku, CAST(:payload AS jsonb))"
        ), {"sku": str(catalog.skus["Desk lamp"]), "payload": f'{{"sku_id": "{catalog.skus["Desk lamp"]}"}}'})
    catalog.add("Walnut desk lamp", "home", "Lumina", "home/lighting", "55.00", None, 2)
    service.refresh()
    assert "Walnut desk lamp" in titles(api.get("/v1/search", params={"q": "walnut lamp"}))


def test_renaming_a_parent_category_reaches_the_products_below_it(service):
    def footwear() -> set[str]:
        result = service.engine.search(SearchRequest(query="footwear", retrieval=Retrieval.lexical))
        return {hit.document.title for hit in result.hits if not result.relaxations}

    assert footwear() == set()
    with session_scope(PLATFORM) as session:
        session.execute(update(Category).where(Category.slug == "fashion/shoes").values(name="Footwear"))
    service.refresh()
    assert footwear() == {"Red running shoe", "Blue running shoe", "White leather sneakers", "Trail hiking boots"}


def test_a_suspended_store_disappears_and_returns(api, service, catalog):
    def set_status(status: TenantStatus) -> None:
        with session_scope(PLATFORM) as session:
            session.get(Tenant, catalog.tenants["home"]).status = status
        service.refresh()

    assert "Electric kettle" in titles(api.get("/v1/search", params={"q": "kettle"}))
    set_status(TenantStatus.suspended)
    body = api.get("/v1/search", params={"q": "kettle"}).json()
    assert all(item["tenant_id"] != str(catalog.tenants["home"]) for item in body["items"])
    assert all(f["value"] != str(catalog.tenants["home"]) for f in body["facets"]["tenant"])
    set_status(TenantStatus.active)
    assert "Electric kettle" in titles(api.get("/v1/search", params={"q": "kettle"}))


def test_a_snapshot_restores_the_index_and_resumes_the_feed(service, catalog):
    service.save_snapshot()
    catalog.add("Yoga mat", "home", "Zen", "sports/yoga", "30.00", None, 4)
    restored = SearchService(service.settings, embedder=shared_embedder(), snapshot_dir=service.snapshot_dir)
    restored.open()
    assert len(restored.engine.index) == len(PRODUCTS)
    restored.refresh()
    found = restored.engine.search(SearchRequest(query="yoga mat")).hits
    assert found[0].document.title == "Yoga mat"


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "field"), [
    ({"q": "shoe", "price_min": 50, "price_max": 10}, "price_min"),
    ({"q": "shoe", "limit": 0}, "limit"),
    ({"q": "shoe", "tenant_id": "not-a-uuid"}, "tenant_id.0"),
    ({"q": "shoe", "sort": "cheapest"}, "sort"),
    ({"q": "shoe", "category": "Not A Path"}, "category.0"),
    ({"q": "shoe", "rating_min": 6}, "rating_min"),
])
def test_bad_parameters_are_problems_naming_the_field(api, params, field):
    response = api.get("/v1/search", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]


def test_an_empty_suggestion_prefix_is_refused(api):
    response = api.get("/v1/search/suggest", params={"q": ""})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "q"


def test_items_carry_what_a_result_list_shows(api, catalog):
    item = api.get("/v1/search", params={"q": "red running shoes"}).json()["items"][0]
    assert item["id"] == catalog.products["Red running shoe"]
    assert item["store_name"] == "Swift Store" and item["currency"] == "USD" and item["in_stock"] is True
    assert item["category"] == "fashion/shoes/running" and item["brand"] == "Swift" and item["price"] == 80.0


# -- labelled sets from the live database ---------------------------------------------------------


def test_search_sessions_become_graded_judgments_without_future_history(catalog, tmp_path):
    with session_scope(PLATFORM) as session:
        user = User(email=f"{uuid.uuid4().hex[:10]}@shop.example.com", password_hash="x", role=Role.buyer)
        session.add(user)
        session.flush()
        user_id = user.id
    day = timedelta(days=1)
    start = datetime.now(UTC) - 10 * day
    timeline = [  # (session, minutes after start, type, product title, query)
        ("old", 0, "search", None, "shoes"), ("old", 1, "purchase", "Blue running shoe", None),
        ("new", 60 * 24 * 5, "search", None, "red shoes"), ("new", 60 * 24 * 5 + 1, "click", "Red running shoe", None),
        ("new", 60 * 24 * 5 + 2, "add_to_cart", "Red running shoe", None),
        ("new", 60 * 24 * 5 + 3, "search", None, "kettle"), ("new", 60 * 24 * 5 + 4, "purchase", "Electric kettle", None),
    ]
    with owner_engine().begin() as connection:
        for session_id, minutes, event_type, title, query in timeline:
            connection.execute(text(
                "INSERT INTO shopper_events (event_id, event_type, user_id, session_id, occurred_at, product_id, query,"
                " context) VALUES (gen_random_uuid(), :type, :user, :session, :at, :product, :query, '{}')"
            ), {"type": event_type, "user": user_id, "session": session_id, "query": query,
                "at": start + timedelta(minutes=minutes), "product": catalog.products.get(title)})
        summary = export_session_set(connection, tmp_path, max_queries=10, test_share=0.5)
    labelled = read_labelled_set(tmp_path / "products.jsonl", tmp_path / "queries.csv", tmp_path / "judgments.csv",
                                 tmp_path / "interactions.csv")
    assert summary.products == len(PRODUCTS) and summary.queries == 2
    by_text = {query.text: labelled.judgments[query.id] for query in labelled.queries}
    assert by_text == {"red shoes": {catalog.products["Red running shoe"]: 2.0},
                       "kettle": {catalog.products["Electric kettle"]: 3.0}}
    assert {query.user for query in labelled.queries} == {str(user_id)}
    assert labelled.interactions == {str(user_id): [(catalog.products["Blue running shoe"], 5.0)]}
