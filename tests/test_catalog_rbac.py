"""Role x endpoint matrix for the catalog, categories and storefront: exact status per role.

Sellers act on their own store's product; each request gets a fresh product, so an allowed
destructive call (delete) cannot change what the next role sees."""

import uuid

import pytest

from tests.factories import buyer, platform_admin, seller, staff

ROLES = ["anonymous", "buyer", "seller_admin", "seller_staff", "platform_admin"]
EVERYONE = set(ROLES)
SELLERS = {"seller_admin", "seller_staff"}


def _code() -> str:
    return f"SKU-{uuid.uuid4().hex[:10]}"


def _product_body():
    return {
        "title": "Lamp",
        "status": "active",
        "skus": [{"sku_code": _code(), "price": "12.00", "currency": "EUR"}],
    }


def _upload():
    return {
        "files": {
            "file": ("p.csv", f"product_ref,sku_code,title,price,currency\nlamp,{_code()},Lamp,3,EUR\n")
        }
    }


# (method, path, request keyword arguments, roles allowed, status when allowed)
MATRIX = [
    ("GET", "/v1/categories", dict, EVERYONE, 200),
    (
        "POST",
        "/v1/admin/categories",
        lambda: {"json": {"slug": f"c-{uuid.uuid4().hex[:8]}", "name": "C"}},
        {"platform_admin"},
        201,
    ),
    (
        "PATCH",
        "/v1/admin/categories/{category}",
        lambda: {"json": {"name": "Renamed"}},
        {"platform_admin"},
        200,
    ),
    ("GET", "/v1/tenant/products", dict, SELLERS, 200),
    ("POST", "/v1/tenant/products", lambda: {"json": _product_body()}, SELLERS, 201),
    ("POST", "/v1/tenant/products/bulk", _upload, SELLERS, 200),
    ("GET", "/v1/tenant/products/{product}", dict, SELLERS, 200),
    ("PATCH", "/v1/tenant/products/{product}", lambda: {"json": {"title": "Desk lamp"}}, SELLERS, 200),
    ("DELETE", "/v1/tenant/products/{product}", dict, {"seller_admin"}, 204),
    (
        "POST",
        "/v1/tenant/products/{product}/skus",
        lambda: {"json": {"sku_code": _code(), "price": "1.00", "currency": "EUR"}},
        SELLERS,
        201,
    ),
    ("PATCH", "/v1/tenant/products/{product}/skus/{sku}", lambda: {"json": {"price": "9.99"}}, SELLERS, 200),
    ("GET", "/v1/tenant/products/{product}/versions", dict, SELLERS, 200),
    (
        "POST",
        "/v1/tenant/products/{product}/rollback",
        lambda: {"json": {"version": 1}},
        {"seller_admin"},
        200,
    ),
    ("GET", "/v1/storefront/products", dict, EVERYONE, 200),
    ("GET", "/v1/storefront/products/{product}", dict, EVERYONE, 200),
]


@pytest.fixture
def actors(client):
    _, admin = seller(client)
    return {
        "anonymous": {},
        "buyer": buyer(client),
        "seller_admin": admin,
        "seller_staff": staff(client, admin),
        "platform_admin": platform_admin(client),
    }


def _fresh_ids(client, actors) -> dict[str, str]:
    product = client.post("/v1/tenant/products", json=_product_body(), headers=actors["seller_admin"]).json()
    category = client.post(
        "/v1/admin/categories",
        json={"slug": f"c-{uuid.uuid4().hex[:8]}", "name": "C"},
        headers=actors["platform_admin"],
    ).json()
    return {"product": product["id"], "sku": product["skus"][0]["id"], "category": category["id"]}


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "allowed", "success"),
    MATRIX,
    ids=[f"{m} {p}" for m, p, *_ in MATRIX],
)
def test_role_matrix(client, actors, method, path, request_kwargs, allowed, success):
    for role in ROLES:
        url = path.format(**_fresh_ids(client, actors))
        response = client.request(method, url, headers=actors[role], **request_kwargs())
        if role in allowed:
            expected = success
        else:
            expected = 401 if role == "anonymous" else 403
        assert response.status_code == expected, (role, response.status_code, response.text)
