"""Checkout: idempotent, priced per seller, never overselling."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from tests.factories import buyer, seller
from tests.factories_commerce import (
    ADDRESS,
    add_to_cart,
    buyers,
    checkout,
    configure_store,
    owner_rows,
    set_price,
    stock_of,
    stocked_sku,
)


def test_checkout_splits_the_cart_per_seller_with_each_sellers_tax_shipping_and_commission(client):
    first_id, _ = seller(client)
    second_id, _ = seller(client)
    configure_store(
        first_id,
        tax_rate="0.10",
        commission_rate="0.15",
        shipping={"methods": ["standard"], "flat_rate": "4.00", "free_shipping_over": "50.00"},
    )
    configure_store(second_id, tax_rate="0.05", commission_rate="0.10", shipping={"flat_rate": "3.50"})
    cheap, pricey = stocked_sku(first_id, price="30.00"), stocked_sku(second_id, price="12.25")
    headers = buyer(client)
    add_to_cart(client, headers, cheap.sku_id, 2)
    add_to_cart(client, headers, pricey.sku_id, 1)

    response = checkout(client, headers)

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "PAID" and order["failure_reason"] is None
    shares = {share["tenant_id"]: share for share in order["sub_orders"]}
    first, second = shares[first_id], shares[second_id]
    assert (first["items_total"], first["tax_total"], first["shipping_total"]) == ("60.00", "6.00", "0.00")
    assert (second["items_total"], second["tax_total"], second["shipping_total"]) == ("12.25", "0.61", "3.50")
    assert order["grand_total"] == str(
        Decimal("60.00") + Decimal("6.00") + Decimal("12.25") + Decimal("0.61") + Decimal("3.50")
    )
    assert [p["status"] for p in order["payments"]] == ["captured"]
    assert [[h["to_status"] for h in share["history"]] for share in (first, second)] == [
        ["PAYMENT_PENDING", "PAID"]
    ] * 2
    commissions = dict(owner_rows("SELECT tenant_id::text, commission FROM sub_orders"))
    assert commissions == {first_id: Decimal("9.00"), second_id: Decimal("1.23")}
    assert stock_of(cheap.sku_id) == (8, 0) and stock_of(pricey.sku_id) == (9, 0)
    assert client.get("/v1/cart", headers=headers).json()["items"] == []


def test_the_same_idempotency_key_returns_the_same_order(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id)
    first = checkout(client, headers, "key-1")
    add_to_cart(client, headers, sku.sku_id)  # a new cart does not make the old key a new order

    again = checkout(client, headers, "key-1")

    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert owner_rows("SELECT count(*) FROM orders")[0][0] == 1
    assert stock_of(sku.sku_id) == (9, 0)
    other = client.post(
        "/v1/checkout",
        headers={**headers, "Idempotency-Key": "key-1"},
        json={
            "shipping_address": {**ADDRESS, "city": "Elsewhere"},
            "shipping_method": "standard",
            "payment": {"method": "card", "token": "tok_visa"},
        },
    )
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.slow
def test_two_racing_requests_with_one_key_make_one_order(live_server, client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id)
    body = {
        "shipping_address": ADDRESS,
        "shipping_method": "standard",
        "payment": {"method": "card", "token": "tok_visa"},
    }

    def place(_):
        return httpx.post(
            f"{live_server}/v1/checkout",
            headers={**headers, "Idempotency-Key": "race"},
            json=body,
            timeout=60,
        )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(place, range(8)))

    assert {r.status_code for r in responses} <= {200, 201}
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    assert owner_rows("SELECT count(*) FROM orders")[0][0] == 1
    assert stock_of(sku.sku_id) == (9, 0)


def test_changed_prices_answer_409_with_the_new_prices_until_accepted(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, price="10.00")
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 2)
    set_price(sku.sku_id, "11.50")

    refused = checkout(client, headers, "k")

    assert refused.status_code == 409
    assert refused.json()["price_changes"] == [
        {"sku_id": str(sku.sku_id), "cart_price": "10.00", "current_price": "11.50", "currency": "USD"}
    ]
    assert client.get("/v1/cart", headers=headers).json()["prices_changed"] is True
    assert stock_of(sku.sku_id) == (10, 0) and owner_rows("SELECT count(*) FROM orders")[0][0] == 0
    assert client.post("/v1/cart/accept-prices", headers=headers).json()["totals"] == {"USD": "23.00"}
    accepted = checkout(client, headers, "k")
    assert accepted.status_code == 201 and accepted.json()["items_total"] == "23.00"


def test_insufficient_stock_is_409_and_keeps_the_cart(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=2)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 3)

    response = checkout(client, headers)

    assert response.status_code == 409 and response.json()["sku_id"] == str(sku.sku_id)
    assert stock_of(sku.sku_id) == (2, 0)
    assert client.get("/v1/cart", headers=headers).json()["items"][0]["quantity"] == 3


def test_stock_is_taken_across_warehouses_fullest_first(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=[2, 3])
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 4)

    assert checkout(client, headers).json()["status"] == "PAID"
    levels = owner_rows("SELECT available, reserved FROM inventory_levels ORDER BY available")
    assert [tuple(level) for level in levels] == [(0, 0), (1, 0)]


def test_checkout_input_is_validated_naming_the_field(client):
    tenant_id, _ = seller(client)
    configure_store(tenant_id, shipping={"methods": ["standard"]})
    sku = stocked_sku(tenant_id)
    headers = buyer(client)
    assert checkout(client, headers).json()["errors"][0]["field"] == "cart"  # empty cart
    add_to_cart(client, headers, sku.sku_id)

    no_key = client.post("/v1/checkout", headers=headers, json={})
    express = checkout(client, headers, shipping_method="express")
    bad_method = checkout(client, headers, method="cheque")

    assert no_key.status_code == 422
    assert {"header.Idempotency-Key", "shipping_address", "payment"} <= {
        e["field"] for e in no_key.json()["errors"]
    }
    assert express.status_code == 422 and express.json()["errors"][0]["field"] == "shipping_method"
    assert bad_method.status_code == 422 and bad_method.json()["errors"][0]["field"] == "payment.method"


def test_express_and_pickup_shipping_follow_the_store_settings(client):
    tenant_id, _ = seller(client)
    configure_store(
        tenant_id,
        shipping={
            "methods": ["standard", "express", "pickup"],
            "flat_rate": "5.00",
            "free_shipping_over": "15.00",
        },
    )
    sku = stocked_sku(tenant_id, price="20.00")
    shipping = {}
    for method in ("standard", "express", "pickup"):
        headers = buyer(client)
        add_to_cart(client, headers, sku.sku_id)
        shipping[method] = checkout(client, headers, shipping_method=method).json()["shipping_total"]
    assert shipping == {"standard": "0.00", "express": "5.00", "pickup": "0.00"}


@pytest.mark.slow
def test_fifty_concurrent_checkouts_for_ten_units_sell_exactly_ten(live_server, client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=10)
    shoppers = buyers(50)
    for headers in shoppers:
        add_to_cart(client, headers, sku.sku_id)
    body = {
        "shipping_address": ADDRESS,
        "shipping_method": "standard",
        "payment": {"method": "card", "token": "tok_visa"},
    }

    def place(headers):
        return httpx.post(
            f"{live_server}/v1/checkout",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json=body,
            timeout=120,
        )

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(place, shoppers))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 40, [r.text for r in responses if r.status_code not in (201, 409)]
    assert all(r.json()["status"] == "PAID" for r in responses if r.status_code == 201)
    assert stock_of(sku.sku_id) == (0, 0)
    assert owner_rows("SELECT sum(quantity) FROM stock_reservations WHERE status = 'committed'")[0][0] == 10
    # No intermediate state went negative either: every inventory change is in the outbox.
    changes = owner_rows("SELECT payload FROM outbox WHERE aggregate_type = 'inventory'")
    assert min(min(p["available"], p["reserved"]) for (p,) in changes) >= 0


def test_a_logged_out_token_cannot_check_out(client):
    tenant_id, _ = seller(client)
    headers = buyer(client)
    add_to_cart(client, headers, stocked_sku(tenant_id).sku_id)
    assert client.post("/v1/auth/logout", headers=headers, json={}).status_code == 204

    response = checkout(client, headers)

    assert response.status_code == 401 and response.json()["errors"][0]["field"] == "Authorization"
    assert owner_rows("SELECT count(*) FROM orders")[0][0] == 0
