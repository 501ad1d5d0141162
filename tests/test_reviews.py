"""Reviews: only buyers who received the product; moderated; approved ones make the rating."""

from decimal import Decimal

from tests.factories import buyer, platform_admin, seller
from tests.factories_commerce import add_to_cart, checkout, move, owner_rows, stocked_sku


def _received(client, sku, seller_headers):
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id)
    order = checkout(client, headers).json()
    move(client, seller_headers, order["sub_orders"][0]["id"], "PACKED", "SHIPPED", "DELIVERED")
    return headers


def _review(client, headers, product_id, rating, comment="fine"):
    return client.post(
        f"/v1/products/{product_id}/reviews", headers=headers, json={"rating": rating, "comment": comment}
    )


def test_only_a_buyer_with_a_delivered_item_may_review(client):
    tenant_id, seller_headers = seller(client)
    sku = stocked_sku(tenant_id)
    stranger = buyer(client)
    waiting = buyer(client)
    add_to_cart(client, waiting, sku.sku_id)
    assert checkout(client, waiting).json()["status"] == "PAID"

    assert _review(client, stranger, sku.product_id, 5).status_code == 403
    not_yet = _review(client, waiting, sku.product_id, 5)
    assert not_yet.status_code == 403 and not_yet.json()["errors"][0]["field"] == "product_id"

    headers = _received(client, sku, seller_headers)
    created = _review(client, headers, sku.product_id, 4, "good value")
    assert created.status_code == 201 and created.json()["moderation_status"] == "pending"
    assert _review(client, headers, sku.product_id, 5).status_code == 409
    assert _review(client, headers, sku.product_id, 6).json()["errors"][0]["field"] == "rating"


def test_moderation_publishes_approved_reviews_and_updates_the_rating(client):
    tenant_id, seller_headers = seller(client)
    sku = stocked_sku(tenant_id)
    admin = platform_admin(client)
    review_ids = [
        _review(client, _received(client, sku, seller_headers), sku.product_id, rating).json()["id"]
        for rating in (5, 4, 1)
    ]
    public = f"/v1/products/{sku.product_id}/reviews"
    assert client.get(public).json() == []
    assert [r["id"] for r in client.get("/v1/admin/reviews", headers=admin).json()] == review_ids

    for review_id, decision in zip(review_ids, ("approved", "approved", "rejected"), strict=True):
        response = client.post(
            f"/v1/admin/reviews/{review_id}/moderation", headers=admin, json={"decision": decision}
        )
        assert response.status_code == 200 and response.json()["moderation_status"] == decision

    assert sorted(r["rating"] for r in client.get(public).json()) == [4, 5]
    assert owner_rows("SELECT rating_avg, rating_count FROM products") == [(Decimal("4.50"), 2)]
    again = client.post(
        f"/v1/admin/reviews/{review_ids[2]}/moderation", headers=admin, json={"decision": "approved"}
    )
    assert again.status_code == 409
    assert [r["id"] for r in client.get("/v1/admin/reviews?status=rejected", headers=admin).json()] == [
        review_ids[2]
    ]
