"""Categories and sellers' products through the API: versions, rollback, soft delete, audit."""

from tests.factories import platform_admin, seller, staff

KETTLE = {
    "title": "Kettle",
    "description": "Boils water",
    "brand": "Steamy",
    "status": "active",
    "attributes": {"material": "steel"},
    "images": ["https://img.example.com/kettle.jpg"],
    "skus": [
        {"sku_code": "K-RED", "price": "30.00", "currency": "EUR", "attributes": {"color": "red"}},
        {"sku_code": "K-BLUE", "price": "27.5", "currency": "EUR", "attributes": {"color": "blue"}},
    ],
}


def _create(client, headers, body=KETTLE):
    response = client.post("/v1/tenant/products", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_platform_admins_build_the_category_tree_and_everyone_reads_it(client):
    admin = platform_admin(client)
    home = client.post("/v1/admin/categories", json={"slug": "home", "name": "Home"}, headers=admin).json()
    kitchen = client.post(
        "/v1/admin/categories",
        json={"slug": "kitchen", "name": "Kitchen", "parent_id": home["id"]},
        headers=admin,
    ).json()
    knives = client.post(
        "/v1/admin/categories",
        json={"slug": "knives", "name": "Knives", "parent_id": kitchen["id"]},
        headers=admin,
    ).json()
    assert knives["slug"] == "home/kitchen/knives"
    duplicate = client.post("/v1/admin/categories", json={"slug": "home", "name": "Again"}, headers=admin)
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "slug"

    cycle = client.patch(
        f"/v1/admin/categories/{home['id']}", json={"parent_id": knives["id"]}, headers=admin
    )
    assert cycle.status_code == 409 and cycle.json()["errors"][0]["field"] == "parent_id"
    moved = client.patch(
        f"/v1/admin/categories/{kitchen['id']}",
        json={"parent_id": None, "name": "Cooking", "slug": "cooking"},
        headers=admin,
    )
    assert moved.status_code == 200 and moved.json()["slug"] == "cooking"

    tree = client.get("/v1/categories").json()
    assert [(node["slug"], node["name"]) for node in tree] == [("cooking", "Cooking"), ("home", "Home")]
    assert tree[0]["children"][0]["slug"] == "cooking/knives" and tree[1]["children"] == []


def test_product_lifecycle_versions_and_min_price(client):
    _, admin = seller(client)
    product = _create(client, admin)
    assert (product["version"], product["min_price"], len(product["skus"])) == (1, "27.50", 2)
    assert product["images"] == [{"url": "https://img.example.com/kettle.jpg", "alt": None}]
    path = f"/v1/tenant/products/{product['id']}"

    renamed = client.patch(path, json={"title": "Electric kettle", "brand": None}, headers=admin).json()
    assert (renamed["version"], renamed["title"], renamed["brand"]) == (2, "Electric kettle", None)
    unchanged = client.patch(path, json={"title": "Electric kettle"}, headers=admin).json()
    assert unchanged["version"] == 2

    with_sku = client.post(
        f"{path}/skus", json={"sku_code": "K-MINI", "price": "19.90", "currency": "EUR"}, headers=admin
    ).json()
    assert (with_sku["version"], with_sku["min_price"]) == (3, "19.90")
    mini = next(sku for sku in with_sku["skus"] if sku["sku_code"] == "K-MINI")
    repriced = client.patch(f"{path}/skus/{mini['id']}", json={"price": "35"}, headers=admin).json()
    assert (repriced["version"], repriced["min_price"]) == (4, "27.50")

    history = client.get(f"{path}/versions", headers=admin).json()
    assert [(v["version"], v["change_reason"]) for v in history] == [
        (4, "sku updated"),
        (3, "sku added"),
        (2, "updated"),
        (1, "created"),
    ]
    assert history[-1]["snapshot"]["title"] == "Kettle"

    rolled_back = client.post(f"{path}/rollback", json={"version": 1}, headers=admin).json()
    assert (rolled_back["version"], rolled_back["title"], rolled_back["brand"]) == (5, "Kettle", "Steamy")
    assert {sku["sku_code"]: sku["is_active"] for sku in rolled_back["skus"]} == {
        "K-BLUE": True,
        "K-MINI": False,
        "K-RED": True,
    }
    assert rolled_back["min_price"] == "27.50"
    assert client.get(f"{path}/versions", headers=admin).json()[0]["change_reason"] == "rollback to v1"
    assert client.post(f"{path}/rollback", json={"version": 99}, headers=admin).status_code == 404


def test_soft_deleted_products_leave_every_view(client):
    _, admin = seller(client)
    product = _create(client, admin)
    path = f"/v1/tenant/products/{product['id']}"
    assert client.get(f"/v1/storefront/products/{product['id']}").status_code == 200
    assert client.delete(path, headers=admin).status_code == 204
    assert client.get(path, headers=admin).status_code == 404
    assert client.patch(path, json={"title": "x"}, headers=admin).status_code == 404
    assert client.get(f"{path}/versions", headers=admin).status_code == 404
    assert client.get("/v1/tenant/products", headers=admin).json()["items"] == []
    assert client.get(f"/v1/storefront/products/{product['id']}").status_code == 404
    assert client.get("/v1/storefront/products").json()["items"] == []


def test_staff_edit_products_but_only_admins_delete_or_roll_back(client):
    _, admin = seller(client)
    staff_headers = staff(client, admin)
    product = _create(client, staff_headers)
    path = f"/v1/tenant/products/{product['id']}"
    assert client.patch(path, json={"status": "inactive"}, headers=staff_headers).status_code == 200
    assert client.post(f"{path}/rollback", json={"version": 1}, headers=staff_headers).status_code == 403
    assert client.delete(path, headers=staff_headers).status_code == 403
    assert client.delete(path, headers=admin).status_code == 204


def test_stores_cannot_see_or_change_each_others_products(client):
    _, first = seller(client)
    _, second = seller(client)
    product = _create(client, first)
    path = f"/v1/tenant/products/{product['id']}"
    assert client.get(path, headers=second).status_code == 404
    assert client.patch(path, json={"title": "hijacked"}, headers=second).status_code == 404
    assert client.delete(path, headers=second).status_code == 404
    assert client.get("/v1/tenant/products", headers=second).json()["items"] == []
    taken = client.post("/v1/tenant/products", json={**KETTLE, "skus": KETTLE["skus"][:1]}, headers=first)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "sku_code"
    # SKU codes are unique per store, not across stores.
    assert client.post("/v1/tenant/products", json=KETTLE, headers=second).status_code == 201


def test_invalid_products_are_refused_naming_the_field(client):
    _, admin = seller(client)
    cases = [
        ({**KETTLE, "skus": [{"sku_code": "X", "price": "1.00", "currency": "EURO"}]}, "skus.0.currency"),
        ({**KETTLE, "skus": [{"sku_code": "X", "price": "1.001", "currency": "EUR"}]}, "skus.0.price"),
        ({**KETTLE, "skus": [{"sku_code": "X", "price": "-1", "currency": "EUR"}]}, "skus.0.price"),
        ({**KETTLE, "skus": []}, "status"),
        (
            {
                **KETTLE,
                "skus": [
                    {"sku_code": "A", "price": "1", "currency": "EUR"},
                    {"sku_code": "B", "price": "1", "currency": "USD"},
                ],
            },
            "currency",
        ),
        ({**KETTLE, "category_id": "00000000-0000-0000-0000-000000000000"}, "category_id"),
        ({**KETTLE, "images": ["not a url"]}, "images.0.url"),
    ]
    for body, field in cases:
        response = client.post("/v1/tenant/products", json=body, headers=admin)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [error["field"] for error in response.json()["errors"]], (field, response.json())


def test_a_sellers_product_change_shows_in_the_audit_log_with_the_actor(client):
    _, admin = seller(client)
    me = client.get("/v1/auth/userinfo", headers=admin).json()
    product = _create(client, admin)
    client.patch(f"/v1/tenant/products/{product['id']}", json={"title": "Audited kettle"}, headers=admin)
    log = client.get("/v1/tenant/audit-log", headers=admin).json()
    product_entries = [
        entry for entry in log if entry["entity_type"] == "product" and entry["entity_id"] == product["id"]
    ]
    assert [entry["action"] for entry in product_entries] == ["updated", "created"]
    assert all(entry["actor_user_id"] == me["id"] for entry in product_entries)
    assert product_entries[0]["changes"]["title"] == {"old": "Kettle", "new": "Audited kettle"}
