"""Role x endpoint matrix for inventory, cart, checkout, orders, payments and reviews: the exact
status per role. Every request gets freshly prepared resources, so an allowed call (a cancel, a
moderation) cannot change what the next role sees."""

import hashlib
import hmac
import json
import uuid

import pytest

from tests.factories import buyer, platform_admin, seller, staff
from tests.factories_commerce import ADDRESS, add_to_cart, checkout, move, stocked_sku
from transactional.config import get_settings

ROLES = ["anonymous", "buyer", "seller_admin", "seller_staff", "platform_admin"]
EVERYONE = set(ROLES)
SELLERS = {"seller_admin", "seller_staff"}
BUYER = {"buyer"}


@pytest.fixture
def world(client):
    tenant_id, admin = seller(client)
    actors = {
        "anonymous": {},
        "buyer": buyer(client),
        "seller_admin": admin,
        "seller_staff": staff(client, admin),
        "platform_admin": platform_admin(client),
    }
    return client, tenant_id, actors


def _order(client, tenant_id, actors, token="tok_visa", *moves):
    sku = stocked_sku(tenant_id)
    add_to_cart(client, actors["buyer"], sku.sku_id)
    order = checkout(client, actors["buyer"], token=token).json()
    share = order["sub_orders"][0]["id"]
    if moves:
        move(client, actors["seller_admin"], share, *moves)
    return {"order": order["id"], "share": share, "product": sku.product_id, "sku": sku.sku_id}


def _sku_in_cart(client, tenant_id, actors):
    sku = stocked_sku(tenant_id)
    add_to_cart(client, actors["buyer"], sku.sku_id)
    return {"sku": sku.sku_id, "product": sku.product_id, "warehouse": sku.warehouse_ids[0]}


def _pending_review(client, tenant_id, actors):
    ids = _order(client, tenant_id, actors, "tok_visa", "PACKED", "SHIPPED", "DELIVERED")
    review = client.post(
        f"/v1/products/{ids['product']}/reviews", headers=actors["buyer"], json={"rating": 5}
    )
    return {"review": review.json()["id"]}


def _signed_event():
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "dispute.opened", "data": {}}).encode()
    signature = hmac.new(get_settings().payment_webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content": body, "headers": {"X-Simulated-Signature": f"sha256={signature}"}}


def nothing(*_):
    return {}


def paid(*args):
    return _order(*args)


def delivered(*args):
    return _order(*args, "tok_visa", "PACKED", "SHIPPED", "DELIVERED")


def failed(*args):
    return _order(*args, "tok_card_declined")


# (method, path, prepare -> path ids, request keyword arguments from ids, roles allowed, status when allowed)
MATRIX = [
    ("GET", "/v1/inventory/warehouses", nothing, lambda ids: {}, SELLERS, 200),
    (
        "POST",
        "/v1/inventory/warehouses",
        nothing,
        lambda ids: {"json": {"code": uuid.uuid4().hex[:8], "name": "North"}},
        {"seller_admin"},
        201,
    ),
    ("GET", "/v1/inventory/levels", nothing, lambda ids: {}, SELLERS, 200),
    (
        "POST",
        "/v1/inventory/adjustments",
        _sku_in_cart,
        lambda ids: {
            "json": {
                "sku_id": str(ids["sku"]),
                "warehouse_id": str(ids["warehouse"]),
                "delta": 3,
                "reason": "received",
            }
        },
        SELLERS,
        201,
    ),
    ("GET", "/v1/inventory/adjustments", nothing, lambda ids: {}, SELLERS, 200),
    ("GET", "/v1/cart", nothing, lambda ids: {}, BUYER, 200),
    (
        "POST",
        "/v1/cart/items",
        _sku_in_cart,
        lambda ids: {"json": {"sku_id": str(ids["sku"]), "quantity": 1}},
        BUYER,
        201,
    ),
    ("PATCH", "/v1/cart/items/{sku}", _sku_in_cart, lambda ids: {"json": {"quantity": 2}}, BUYER, 200),
    ("DELETE", "/v1/cart/items/{sku}", _sku_in_cart, lambda ids: {}, BUYER, 200),
    ("POST", "/v1/cart/accept-prices", nothing, lambda ids: {}, BUYER, 200),
    ("DELETE", "/v1/cart", nothing, lambda ids: {}, BUYER, 204),
    (
        "POST",
        "/v1/checkout",
        _sku_in_cart,
        lambda ids: {
            "headers": {"Idempotency-Key": uuid.uuid4().hex},
            "json": {
                "shipping_address": ADDRESS,
                "shipping_method": "standard",
                "payment": {"method": "card", "token": "tok_visa"},
            },
        },
        BUYER,
        201,
    ),
    ("GET", "/v1/orders", nothing, lambda ids: {}, BUYER, 200),
    ("GET", "/v1/orders/{order}", paid, lambda ids: {}, BUYER, 200),
    ("POST", "/v1/orders/{order}/cancel", paid, lambda ids: {}, BUYER, 200),
    (
        "POST",
        "/v1/orders/{order}/returns",
        delivered,
        lambda ids: {"json": {"sub_order_id": ids["share"]}},
        BUYER,
        200,
    ),
    (
        "POST",
        "/v1/orders/{order}/payments",
        failed,
        lambda ids: {"json": {"method": "wallet", "token": "w-1"}},
        BUYER,
        201,
    ),
    ("GET", "/v1/tenant/orders", nothing, lambda ids: {}, SELLERS, 200),
    ("GET", "/v1/tenant/orders/{share}", paid, lambda ids: {}, SELLERS, 200),
    (
        "POST",
        "/v1/tenant/orders/{share}/status",
        paid,
        lambda ids: {"json": {"status": "PACKED"}},
        SELLERS,
        200,
    ),
    ("POST", "/v1/payments/webhooks/simulated", nothing, lambda ids: _signed_event(), EVERYONE, 200),
    ("POST", "/v1/products/{product}/reviews", delivered, lambda ids: {"json": {"rating": 4}}, BUYER, 201),
    ("GET", "/v1/products/{product}/reviews", paid, lambda ids: {}, EVERYONE, 200),
    ("GET", "/v1/admin/reviews", nothing, lambda ids: {}, {"platform_admin"}, 200),
    (
        "POST",
        "/v1/admin/reviews/{review}/moderation",
        _pending_review,
        lambda ids: {"json": {"decision": "approved"}},
        {"platform_admin"},
        200,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "prepare", "request_kwargs", "allowed", "success"),
    MATRIX,
    ids=[f"{m} {p}" for m, p, *_ in MATRIX],
)
def test_role_matrix(world, method, path, prepare, request_kwargs, allowed, success):
    client, tenant_id, actors = world
    for role in ROLES:
        ids = prepare(client, tenant_id, actors)
        kwargs = request_kwargs(ids)
        headers = {**kwargs.pop("headers", {}), **actors[role]}
        response = client.request(method, path.format(**ids), headers=headers, **kwargs)
        expected = success if role in allowed else 401 if role == "anonymous" else 403
        assert response.status_code == expected, (role, response.status_code, response.text)
