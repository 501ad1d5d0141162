"""Payments: declines and retries, capture failures, refunds, signed idempotent webhooks."""

import hashlib
import hmac
import json
import uuid
from decimal import Decimal

from sqlalchemy import text

from tests.factories import buyer, seller
from tests.factories_commerce import add_to_cart, checkout, owner_rows, stock_of, stocked_sku, user_id
from transactional.config import get_settings
from transactional.db import PLATFORM, owner_engine, session_scope
from transactional.services import checkout as checkout_service
from transactional.services import inventory
from transactional.services.payments import (
    PaymentMethod,
    SimulatedPaymentProvider,
    SimulatedProviderSettings,
    get_payment_provider,
)

WEBHOOK = "/v1/payments/webhooks/simulated"


def _failed_order(client, token="tok_card_declined", stock=5):
    tenant_id, seller_headers = seller(client)
    sku = stocked_sku(tenant_id, stock=stock)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 2)
    return sku, headers, checkout(client, headers, token=token)


def test_a_declined_payment_keeps_the_order_as_payment_failed_and_releases_stock(client):
    sku, headers, response = _failed_order(client)

    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "PAYMENT_FAILED" and order["failure_reason"] == "payment failed: card_declined"
    assert [(p["status"], p["failure_reason"]) for p in order["payments"]] == [("failed", "card_declined")]
    assert stock_of(sku.sku_id) == (5, 0)
    assert owner_rows("SELECT status FROM stock_reservations") == [("released",)]


def test_the_buyer_pays_again_and_the_stock_is_reserved_again(client):
    sku, headers, failed = _failed_order(client)
    order_id = failed.json()["id"]

    retried = client.post(
        f"/v1/orders/{order_id}/payments", headers=headers, json={"method": "upi", "token": "ada@upi"}
    )

    assert retried.status_code == 201, retried.text
    order = retried.json()
    assert order["id"] == order_id and order["status"] == "PAID" and order["payment_method"] == "upi"
    assert [(p["attempt"], p["status"]) for p in order["payments"]] == [(1, "failed"), (2, "captured")]
    assert [h["to_status"] for h in order["sub_orders"][0]["history"]] == [
        "PAYMENT_PENDING",
        "PAYMENT_FAILED",
        "PAYMENT_PENDING",
        "PAID",
    ]
    assert stock_of(sku.sku_id) == (3, 0)
    again = client.post(
        f"/v1/orders/{order_id}/payments", headers=headers, json={"method": "card", "token": "t"}
    )
    assert again.status_code == 409 and again.json()["current_status"] == "PAID"


def test_paying_again_when_the_stock_is_gone_is_409_and_the_order_survives(client):
    sku, headers, failed = _failed_order(client, stock=2)
    other = buyer(client)
    add_to_cart(client, other, sku.sku_id, 2)
    assert checkout(client, other).json()["status"] == "PAID"

    retried = client.post(
        f"/v1/orders/{failed.json()['id']}/payments",
        headers=headers,
        json={"method": "card", "token": "tok_visa"},
    )

    assert retried.status_code == 409 and retried.json()["errors"][0]["field"] == "items"
    assert (
        client.get(f"/v1/orders/{failed.json()['id']}", headers=headers).json()["status"] == "PAYMENT_FAILED"
    )
    assert stock_of(sku.sku_id) == (0, 0)


def test_a_failed_capture_voids_the_authorization_and_fails_the_order(client):
    sku, _, response = _failed_order(client, token="tok_capture_fails")
    order = response.json()
    assert order["status"] == "PAYMENT_FAILED" and order["payments"][0]["failure_reason"] == "capture_failed"
    assert stock_of(sku.sku_id) == (5, 0)


def test_each_method_has_a_declining_token_and_large_amounts_are_declined():
    provider = SimulatedPaymentProvider(SimulatedProviderSettings(), "secret")
    declines = {
        method: provider.authorize(
            idempotency_key="k", amount=Decimal("10"), currency="USD", method=method, token=token
        ).failure_reason
        for method, token in [
            (PaymentMethod.card, "tok_insufficient_funds"),
            (PaymentMethod.upi, "declined@upi"),
            (PaymentMethod.netbanking, "bank_declined"),
            (PaymentMethod.wallet, "wallet_declined"),
        ]
    }
    assert declines == {
        PaymentMethod.card: "insufficient_funds",
        PaymentMethod.upi: "upi_collect_request_declined",
        PaymentMethod.netbanking: "netbanking_authentication_failed",
        PaymentMethod.wallet: "wallet_balance_insufficient",
    }
    large = provider.authorize(
        idempotency_key="k",
        amount=Decimal("100000.01"),
        currency="USD",
        method=PaymentMethod.card,
        token="tok_visa",
    )
    assert large.failure_reason == "amount_exceeds_limit"


def test_the_seeded_decline_rate_is_reproducible_per_payment():
    def outcomes(seed):
        provider = SimulatedPaymentProvider(SimulatedProviderSettings(decline_rate=0.3, seed=seed), "secret")
        return [
            provider.authorize(
                idempotency_key=f"payment-{n}",
                amount=Decimal("5"),
                currency="USD",
                method=PaymentMethod.wallet,
                token="w",
            ).succeeded
            for n in range(200)
        ]

    first = outcomes(7)
    assert first == outcomes(7)
    assert 30 < first.count(False) < 90
    assert first != outcomes(8)


def test_cancelling_a_paid_order_refunds_through_the_provider_and_restocks(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, price="10.00", stock=5)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 2)
    order = checkout(client, headers).json()

    cancelled = client.post(f"/v1/orders/{order['id']}/cancel", headers=headers)

    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "CANCELLED"
    assert [(p["status"], p["refunded_amount"]) for p in body["payments"]] == [
        ("refunded", order["grand_total"])
    ]
    refunds = owner_rows("SELECT amount, provider_reference FROM refunds")
    assert refunds[0][0] == Decimal(order["grand_total"]) and refunds[0][1].startswith("sim_ref_")
    assert stock_of(sku.sku_id) == (5, 0)
    assert owner_rows("SELECT delta, reason FROM stock_adjustments") == [(2, "order_cancelled")]


def _signed(event_type, data, event_id=None):
    """A webhook signed as the provider does: HMAC-SHA256 of the raw body with the shared secret."""
    body = json.dumps(
        {"id": event_id or f"evt_{uuid.uuid4().hex}", "type": event_type, "data": data}
    ).encode()
    digest = hmac.new(get_settings().payment_webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Simulated-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def test_webhooks_need_a_valid_signature(client):
    body, headers = _signed("payment.captured", {})
    assert (
        client.post(
            WEBHOOK, content=body, headers={**headers, "X-Simulated-Signature": "sha256=00"}
        ).status_code
        == 401
    )
    assert client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"}).status_code == 401
    tampered = client.post(WEBHOOK, content=body.replace(b"payment", b"refund"), headers=headers)
    assert tampered.status_code == 401 and tampered.json()["errors"][0]["field"] == "X-Simulated-Signature"
    assert owner_rows("SELECT count(*) FROM payment_webhook_events")[0][0] == 0


def test_a_webhook_settles_a_payment_the_api_did_not_finish_and_replays_change_nothing(client):
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=5)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 2)
    # The API placed the order and then stopped before recording the provider's answer.
    request = checkout_service.CheckoutRequest({"city": "x"}, "standard", PaymentMethod.card, "tok_visa")
    pending = checkout_service.place_order(user_id(client, headers), "crash", request, get_payment_provider())
    assert stock_of(sku.sku_id) == (3, 2)
    data = {"merchant_reference": str(pending.payment_id), "reference": "sim_auth_from_webhook"}
    body, signed = _signed("payment.captured", data, event_id="evt_1")

    first = client.post(WEBHOOK, content=body, headers=signed)
    replay = client.post(WEBHOOK, content=body, headers=signed)

    assert (first.status_code, first.json()["outcome"]) == (200, "settled")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    order = client.get(f"/v1/orders/{pending.order_id}", headers=headers).json()
    assert order["status"] == "PAID" and order["payments"][0]["status"] == "captured"
    assert stock_of(sku.sku_id) == (3, 0)
    assert owner_rows("SELECT count(*) FROM order_status_changes WHERE to_status = 'PAID'")[0][0] == 1
    # A later, contradicting event for a settled payment is recorded but changes nothing.
    failed_body, failed_signed = _signed("payment.failed", {**data, "reason": "late"}, event_id="evt_2")
    assert client.post(WEBHOOK, content=failed_body, headers=failed_signed).json()["outcome"] == "settled"
    assert client.get(f"/v1/orders/{pending.order_id}", headers=headers).json()["status"] == "PAID"


def test_a_webhook_for_an_unknown_payment_is_not_recorded_so_the_provider_retries(client):
    body, signed = _signed("payment.failed", {"merchant_reference": str(uuid.uuid4()), "reference": "r"})
    assert client.post(WEBHOOK, content=body, headers=signed).status_code == 404
    assert owner_rows("SELECT count(*) FROM payment_webhook_events")[0][0] == 0
    unknown_type, signed = _signed("dispute.opened", {})
    assert client.post(WEBHOOK, content=unknown_type, headers=signed).json()["outcome"] == "ignored"


def _placed_without_settling(client, stock):
    """An order placed whose provider answer was never recorded (the API stopped in between)."""
    tenant_id, _ = seller(client)
    sku = stocked_sku(tenant_id, stock=stock)
    headers = buyer(client)
    add_to_cart(client, headers, sku.sku_id, 2)
    request = checkout_service.CheckoutRequest({"city": "x"}, "standard", PaymentMethod.card, "tok_visa")
    pending = checkout_service.place_order(
        user_id(client, headers), uuid.uuid4().hex, request, get_payment_provider()
    )
    return sku, headers, pending


def _captured_webhook(client, pending):
    body, signed = _signed(
        "payment.captured", {"merchant_reference": str(pending.payment_id), "reference": "sim_x"}
    )
    assert client.post(WEBHOOK, content=body, headers=signed).json()["outcome"] == "settled"


def _expire_reservations():
    with owner_engine().begin() as connection:
        connection.execute(text("UPDATE stock_reservations SET expires_at = now() - interval '1 second'"))
    with session_scope(PLATFORM) as session:
        assert inventory.release_expired_reservations(session) == 1


def test_a_capture_after_the_reservation_expired_reserves_again(client):
    sku, headers, pending = _placed_without_settling(client, stock=5)
    _expire_reservations()
    assert stock_of(sku.sku_id) == (5, 0)

    _captured_webhook(client, pending)

    assert client.get(f"/v1/orders/{pending.order_id}", headers=headers).json()["status"] == "PAID"
    assert stock_of(sku.sku_id) == (3, 0)


def test_a_capture_after_the_stock_was_sold_elsewhere_is_refunded_and_the_order_cancelled(client):
    sku, headers, pending = _placed_without_settling(client, stock=2)
    _expire_reservations()
    other = buyer(client)
    add_to_cart(client, other, sku.sku_id, 2)
    assert checkout(client, other).json()["status"] == "PAID"

    _captured_webhook(client, pending)

    order = client.get(f"/v1/orders/{pending.order_id}", headers=headers).json()
    assert order["status"] == "CANCELLED" and "refunded" in order["failure_reason"]
    assert (order["payments"][0]["status"], order["payments"][0]["refunded_amount"]) == (
        "refunded",
        order["grand_total"],
    )
    assert stock_of(sku.sku_id) == (0, 0)


def test_a_capture_for_an_order_cancelled_meanwhile_is_refunded(client):
    sku, headers, pending = _placed_without_settling(client, stock=5)
    assert (
        client.post(f"/v1/orders/{pending.order_id}/cancel", headers=headers).json()["status"] == "CANCELLED"
    )
    assert stock_of(sku.sku_id) == (5, 0)

    _captured_webhook(client, pending)

    order = client.get(f"/v1/orders/{pending.order_id}", headers=headers).json()
    assert order["status"] == "CANCELLED" and order["payments"][0]["status"] == "refunded"
    assert stock_of(sku.sku_id) == (5, 0)


def test_malformed_signed_webhooks_are_422_naming_the_field(client):
    for data in ([], {"merchant_reference": "not-a-uuid", "reference": "r"}, {"reference": "r"}):
        body, signed = _signed("payment.captured", data)
        response = client.post(WEBHOOK, content=body, headers=signed)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "data"
    not_json = b"not json"
    signature = hmac.new(get_settings().payment_webhook_secret.encode(), not_json, hashlib.sha256).hexdigest()
    response = client.post(
        WEBHOOK, content=not_json, headers={"X-Simulated-Signature": f"sha256={signature}"}
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body"
    assert owner_rows("SELECT count(*) FROM payment_webhook_events")[0][0] == 0
