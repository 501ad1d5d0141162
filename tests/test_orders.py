"""The order state machine as buyers and sellers drive it."""

from decimal import Decimal

from tests.factories import buyer, seller, staff
from tests.factories_commerce import add_to_cart, checkout, move, owner_rows, stock_of, stocked_sku


def _paid_order(client, *sellers_stock):
    """A paid order with one item from each given seller; returns (buyer headers, order)."""
    headers = buyer(client)
    for tenant_id in sellers_stock:
        add_to_cart(client, headers, stocked_sku(tenant_id, price="20.00").sku_id)
    order = checkout(client, headers).json()
    assert order["status"] == "PAID"
    return headers, order


def _share(order, tenant_id):
    return next(share for share in order["sub_orders"] if share["tenant_id"] == tenant_id)


def test_fulfilment_delivery_return_and_refund_with_every_change_recorded(client):
    tenant_id, seller_headers = seller(client)
    headers, order = _paid_order(client, tenant_id)
    share_id = order["sub_orders"][0]["id"]

    delivered = move(client, staff(client, seller_headers), share_id, "PACKED", "SHIPPED", "DELIVERED")
    assert (
        delivered["status"] == "DELIVERED" and delivered["payout"] == "23.00"
    )  # 20 + 5 shipping - 2 commission
    assert client.get(f"/v1/orders/{order['id']}", headers=headers).json()["status"] == "DELIVERED"
    returned = client.post(
        f"/v1/orders/{order['id']}/returns", headers=headers, json={"sub_order_id": share_id}
    )
    assert returned.status_code == 200 and returned.json()["status"] == "RETURN_REQUESTED"
    refunded = move(client, seller_headers, share_id, "REFUNDED")

    assert refunded["status"] == "REFUNDED"
    final = client.get(f"/v1/orders/{order['id']}", headers=headers).json()
    assert final["status"] == "REFUNDED"
    assert (final["payments"][0]["status"], final["payments"][0]["refunded_amount"]) == ("refunded", "25.00")
    history = owner_rows("SELECT from_status, to_status FROM order_status_changes ORDER BY id")
    assert [tuple(change) for change in history] == [
        (None, "PAYMENT_PENDING"),
        ("PAYMENT_PENDING", "PAID"),
        ("PAID", "PACKED"),
        ("PACKED", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
        ("DELIVERED", "RETURN_REQUESTED"),
        ("RETURN_REQUESTED", "REFUNDED"),
    ]
    assert owner_rows("SELECT amount FROM refunds") == [(Decimal("25.00"),)]


def test_invalid_transitions_answer_409(client):
    tenant_id, seller_headers = seller(client)
    headers, order = _paid_order(client, tenant_id)
    share_id = order["sub_orders"][0]["id"]

    skipped = client.post(
        f"/v1/tenant/orders/{share_id}/status", headers=seller_headers, json={"status": "SHIPPED"}
    )
    early_return = client.post(
        f"/v1/orders/{order['id']}/returns", headers=headers, json={"sub_order_id": share_id}
    )
    move(client, seller_headers, share_id, "PACKED", "SHIPPED")
    late_cancel = client.post(f"/v1/orders/{order['id']}/cancel", headers=headers)
    seller_cancel = client.post(
        f"/v1/tenant/orders/{share_id}/status", headers=seller_headers, json={"status": "CANCELLED"}
    )
    not_a_seller_move = client.post(
        f"/v1/tenant/orders/{share_id}/status", headers=seller_headers, json={"status": "PAID"}
    )

    assert skipped.status_code == 409 and skipped.json()["current_status"] == "PAID"
    assert early_return.status_code == 409
    assert late_cancel.status_code == 409 and late_cancel.json()["current_status"] == "SHIPPED"
    assert seller_cancel.status_code == 409
    assert not_a_seller_move.status_code == 422 and not_a_seller_move.json()["errors"][0]["field"] == "status"
    assert owner_rows("SELECT count(*) FROM order_status_changes")[0][0] == 4


def test_the_combined_order_shows_its_least_advanced_share(client):
    first, first_headers = seller(client)
    second, second_headers = seller(client)
    headers, order = _paid_order(client, first, second)

    move(client, first_headers, _share(order, first)["id"], "PACKED", "SHIPPED")
    assert client.get(f"/v1/orders/{order['id']}", headers=headers).json()["status"] == "PAID"
    move(client, second_headers, _share(order, second)["id"], "PACKED")
    assert client.get(f"/v1/orders/{order['id']}", headers=headers).json()["status"] == "PACKED"

    cancelled = client.post(
        f"/v1/tenant/orders/{_share(order, second)['id']}/status",
        headers=second_headers,
        json={"status": "CANCELLED"},
    )
    assert cancelled.status_code == 200
    combined = client.get(f"/v1/orders/{order['id']}", headers=headers).json()
    assert combined["status"] == "SHIPPED"  # the cancelled share no longer holds the order back
    assert combined["payments"][0]["status"] == "partially_refunded"


def test_a_seller_sees_and_moves_only_its_own_shares(client):
    first, first_headers = seller(client)
    second, second_headers = seller(client)
    headers, order = _paid_order(client, first, second)
    first_share, second_share = _share(order, first), _share(order, second)

    listed = client.get("/v1/tenant/orders", headers=first_headers).json()
    foreign = client.post(
        f"/v1/tenant/orders/{second_share['id']}/status", headers=first_headers, json={"status": "PACKED"}
    )

    assert [share["id"] for share in listed] == [first_share["id"]]
    assert listed[0]["shipping_address"]["city"] == "Springfield" and listed[0]["commission"] == "2.00"
    assert foreign.status_code == 404
    assert client.get(f"/v1/tenant/orders/{second_share['id']}", headers=first_headers).status_code == 404
    assert client.get("/v1/tenant/orders?status=PACKED", headers=first_headers).json() == []


def test_buyers_see_only_their_own_orders(client):
    tenant_id, _ = seller(client)
    headers, order = _paid_order(client, tenant_id)
    stranger = buyer(client)

    assert [o["id"] for o in client.get("/v1/orders", headers=headers).json()] == [order["id"]]
    assert client.get("/v1/orders", headers=stranger).json() == []
    assert client.get(f"/v1/orders/{order['id']}", headers=stranger).status_code == 404
    assert client.post(f"/v1/orders/{order['id']}/cancel", headers=stranger).status_code == 404


def test_cancelling_an_unpaid_order_releases_its_reservation(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=3)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 3)
    failed = checkout(client, headers, token="tok_card_declined").json()
    assert stock_of(sku.sku_id) == (3, 0)

    cancelled = client.post(f"/v1/orders/{failed['id']}/cancel", headers=headers)

    assert cancelled.json()["status"] == "CANCELLED" and cancelled.json()["payments"][0]["status"] == "failed"
    assert stock_of(sku.sku_id) == (3, 0) and owner_rows("SELECT count(*) FROM refunds")[0][0] == 0
    assert (
        client.post(
            f"/v1/orders/{failed['id']}/payments",
            headers=headers,
            json={"method": "card", "token": "tok_visa"},
        ).status_code
        == 409
    )
