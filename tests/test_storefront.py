"""Shopper browsing: what is visible, filters, sorts and keyset pagination across stores."""

import uuid

import pytest
from sqlalchemy import text

from tests.factories import platform_admin, seller
from transactional.db import PLATFORM, owner_engine, session_scope
from transactional.services.catalog import ProductRow, ensure_categories, import_products


def _product(client, headers, title, skus, **fields):
    body = {"title": title, "status": "active", "skus": skus, **fields}
    response = client.post("/v1/tenant/products", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _sku(code, price, **attributes):
    return {"sku_code": code, "price": price, "currency": "EUR", "attributes": attributes}


def _titles(response):
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


@pytest.fixture
def shop(client):
    with session_scope(PLATFORM) as session:
        categories = ensure_categories(session, ["home/kitchen", "home/garden", "toys"])
    first_tenant, first = seller(client)
    second_tenant, second = seller(client)
    _product(
        client,
        first,
        "Kettle",
        [_sku("K-RED", "30.00", color="red"), _sku("K-BLUE", "27.50", color="blue")],
        category_id=str(categories["home/kitchen"]),
        brand="Steamy",
        attributes={"material": "steel"},
    )
    _product(
        client,
        first,
        "Shovel",
        [_sku("S-1", "15.00", color="green")],
        category_id=str(categories["home/garden"]),
        brand="Diggy",
    )
    _product(
        client,
        second,
        "Teddy",
        [_sku("T-1", "10.00")],
        category_id=str(categories["toys"]),
        brand="Fluffy",
        attributes={"color": "brown"},
    )
    _product(client, second, "Draft robot", [_sku("R-1", "99.00")], status="draft")
    _product(client, second, "Retired robot", [_sku("R-2", "99.00")], status="inactive")
    return {"first": first_tenant, "second": second_tenant, "categories": categories}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"Kettle", "Shovel", "Teddy"}),
        ({"category": "home"}, {"Kettle", "Shovel"}),
        ({"category": "home/kitchen"}, {"Kettle"}),
        ({"min_price": "12", "max_price": "28"}, {"Kettle", "Shovel"}),
        ({"attr": "color:red"}, {"Kettle"}),
        ({"attr": "color:brown"}, {"Teddy"}),
        ({"attr": ["color:red", "color:green"]}, {"Kettle", "Shovel"}),
        ({"attr": ["color:red", "material:steel"]}, {"Kettle"}),
        ({"attr": ["color:green", "material:steel"]}, set()),
        ({"brand": "steamy"}, {"Kettle"}),
    ],
)
def test_filters(client, shop, query, expected):
    assert set(_titles(client.get("/v1/storefront/products", params=query))) == expected


def test_filters_by_store_and_category_id(client, shop):
    by_store = client.get("/v1/storefront/products", params={"tenant_id": shop["second"]})
    assert _titles(by_store) == ["Teddy"]
    by_id = client.get("/v1/storefront/products", params={"category": str(shop["categories"]["home"])})
    assert set(_titles(by_id)) == {"Kettle", "Shovel"}


def test_sorts(client, shop):
    def titles(sort):
        return _titles(client.get("/v1/storefront/products", params={"sort": sort}))

    assert titles("price_asc") == ["Teddy", "Shovel", "Kettle"]
    assert titles("price_desc") == ["Kettle", "Shovel", "Teddy"]
    assert titles("newest") == ["Teddy", "Shovel", "Kettle"]
    with owner_engine().begin() as connection:
        connection.execute(
            text("UPDATE products SET rating_avg = 4.5, rating_count = 2 WHERE title = 'Shovel'")
        )
        connection.execute(
            text("UPDATE products SET rating_avg = 3.0, rating_count = 1 WHERE title = 'Teddy'")
        )
    assert titles("rating") == ["Shovel", "Teddy", "Kettle"]


def test_product_detail_shows_active_skus_and_store(client, shop):
    kettle = client.get("/v1/storefront/products", params={"brand": "Steamy"}).json()["items"][0]
    assert (kettle["price"], kettle["currency"]) == ("27.50", "EUR")
    detail = client.get(f"/v1/storefront/products/{kettle['id']}").json()
    assert [sku["sku_code"] for sku in detail["skus"]] == ["K-BLUE", "K-RED"]
    assert detail["attributes"] == {"material": "steel"} and detail["store_name"].startswith("Store")
    assert client.get(f"/v1/storefront/products/{uuid.uuid4()}").status_code == 404


def test_draft_inactive_and_skuless_products_are_not_listed(client):
    _, headers = seller(client)
    draft = _product(client, headers, "Draft robot", [_sku("R-1", "99.00")], status="draft")
    no_active_sku = _product(
        client, headers, "Ghost", [{**_sku("G-1", "5.00"), "is_active": False}], status="draft"
    )
    client.patch(f"/v1/tenant/products/{draft}", json={"status": "inactive"}, headers=headers)
    for product_id in (draft, no_active_sku):
        assert client.get(f"/v1/storefront/products/{product_id}").status_code == 404
    assert client.get("/v1/storefront/products").json()["items"] == []


def test_a_suspended_stores_products_disappear(client, shop):
    admin = platform_admin(client)
    teddy = client.get("/v1/storefront/products", params={"tenant_id": shop["second"]}).json()["items"][0]
    assert client.post(f"/v1/admin/tenants/{shop['second']}/suspend", headers=admin).status_code == 200
    assert set(_titles(client.get("/v1/storefront/products"))) == {"Kettle", "Shovel"}
    assert client.get(f"/v1/storefront/products/{teddy['id']}").status_code == 404
    assert client.post(f"/v1/admin/tenants/{shop['second']}/reactivate", headers=admin).status_code == 200
    assert "Teddy" in _titles(client.get("/v1/storefront/products"))


def _import(tenant_id, prices, prefix):
    rows = [
        ProductRow(
            product_ref=f"{prefix}{i}",
            sku_code=f"{prefix}{i}",
            title=f"{prefix}{i}",
            price=price,
            currency="EUR",
            status="active",
        )
        for i, price in enumerate(prices)
    ]
    with session_scope(PLATFORM) as session:
        import_products(session, tenant_id=tenant_id, actor_user_id=None, rows=rows)


@pytest.mark.parametrize("sort", ["price_asc", "price_desc", "newest"])
def test_keyset_pages_are_stable_under_inserts(client, sort):
    tenant_id, _ = seller(client)
    _import(uuid.UUID(tenant_id), [f"{10 + i % 7}.00" for i in range(25)], "old-")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"sort": sort, "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/storefront/products", params=params).json()
        seen += [item["title"] for item in page["items"]]
        pages += 1
        if pages == 1:  # new products, cheaper and dearer than everything, arrive mid-way
            _import(uuid.UUID(tenant_id), ["1.00", "99.00"], "new-")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    old = [title for title in seen if title.startswith("old-")]
    assert sorted(old) == sorted(f"old-{i}" for i in range(25)) and len(set(seen)) == len(seen)
    assert pages >= 3


def test_bad_browse_parameters_are_400_naming_the_parameter(client):
    cursor = client.get("/v1/storefront/products", params={"cursor": "not-a-cursor"})
    assert cursor.status_code == 400 and cursor.json()["errors"][0]["field"] == "cursor"
    tenant_id, _ = seller(client)
    _import(uuid.UUID(tenant_id), ["1.00", "2.00"], "p-")
    next_cursor = client.get("/v1/storefront/products", params={"limit": 1}).json()["next_cursor"]
    other_sort = client.get("/v1/storefront/products", params={"cursor": next_cursor, "sort": "price_asc"})
    assert other_sort.status_code == 400
    attr = client.get("/v1/storefront/products", params={"attr": "no-colon"})
    assert attr.status_code == 400 and attr.json()["errors"][0]["field"] == "attr"
    assert client.get("/v1/storefront/products", params={"category": "nowhere"}).status_code == 404
    assert client.get("/v1/storefront/products", params={"min_price": "-1"}).status_code == 422
