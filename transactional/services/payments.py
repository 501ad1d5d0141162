"""Payments through a provider interface, with a built-in simulated provider.

Every provider call carries an idempotency key derived from our own row ids, so a call repeated
after a crash or a retry has the provider's original effect and result, never a second charge
or refund. Provider webhooks are HMAC-SHA256 signed and recorded by event id, so a replayed
webhook changes nothing."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from transactional.config import get_settings
from transactional.errors import Conflict, Unauthorized, Unprocessable
from transactional.models import Payment, PaymentStatus, PaymentWebhookEvent, Refund, SubOrder


class PaymentMethod(str, enum.Enum):
    card = "card"
    upi = "upi"
    netbanking = "netbanking"
    wallet = "wallet"


@dataclass(frozen=True)
class ProviderOutcome:
    succeeded: bool
    reference: str
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    name: str

    def authorize(
        self, *, idempotency_key: str, amount: Decimal, currency: str, method: PaymentMethod, token: str
    ) -> ProviderOutcome: ...

    def capture(self, *, authorization: str, amount: Decimal) -> ProviderOutcome: ...

    def void(self, *, authorization: str) -> ProviderOutcome: ...

    def refund(self, *, idempotency_key: str, payment_reference: str, amount: Decimal) -> ProviderOutcome: ...

    def verify_webhook(self, body: bytes, signature: str | None) -> dict[str, Any]: ...


class SimulatedProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_SIMULATED_PAYMENTS_", extra="ignore")

    decline_rate: float = Field(0.0, ge=0, le=1, description="share of otherwise valid payments declined")
    seed: int = Field(0, description="seeds the decline-rate draw, which is fixed per payment")
    latency_ms: int = Field(0, ge=0, description="added to every provider call")


# Magic tokens (one per method, as a provider's test mode has) and the amount limit.
DECLINING_TOKENS = {
    "tok_card_declined": "card_declined",
    "tok_insufficient_funds": "insufficient_funds",
    "declined@upi": "upi_collect_request_declined",
    "bank_declined": "netbanking_authentication_failed",
    "wallet_declined": "wallet_balance_insufficient",
}
CAPTURE_FAILING_TOKEN = "tok_capture_fails"
AMOUNT_LIMIT = Decimal("100000.00")
WEBHOOK_SIGNATURE_HEADER = "X-Simulated-Signature"


class SimulatedPaymentProvider:
    """Deterministic: the outcome depends only on the token, the amount and (for the optional
    decline rate) a draw seeded by the idempotency key, so a repeated call gives the same answer."""

    name = "simulated"

    def __init__(self, settings: SimulatedProviderSettings, webhook_secret: str) -> None:
        self.settings = settings
        self._secret = webhook_secret.encode()

    def _wait(self) -> None:
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)

    def _reference(self, kind: str, key: str) -> str:
        return f"sim_{kind}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"

    def _decline_reason(self, idempotency_key: str, amount: Decimal, token: str) -> str | None:
        if token in DECLINING_TOKENS:
            return DECLINING_TOKENS[token]
        if amount > AMOUNT_LIMIT:
            return "amount_exceeds_limit"
        draw = random.Random(f"{self.settings.seed}:{idempotency_key}").random()
        return "declined_by_issuer" if draw < self.settings.decline_rate else None

    def authorize(
        self, *, idempotency_key: str, amount: Decimal, currency: str, method: PaymentMethod, token: str
    ) -> ProviderOutcome:
        self._wait()
        # The capture-failing token is remembered in the authorization reference, as a real
        # provider remembers the card behind an authorization.
        kind = "authfc" if token == CAPTURE_FAILING_TOKEN else "auth"
        reference = self._reference(kind, idempotency_key)
        reason = self._decline_reason(idempotency_key, amount, token)
        return ProviderOutcome(reason is None, reference, reason)

    def capture(self, *, authorization: str, amount: Decimal) -> ProviderOutcome:
        self._wait()
        reference = self._reference("cap", authorization)
        if authorization.startswith("sim_authfc_"):
            return ProviderOutcome(False, reference, "capture_failed")
        return ProviderOutcome(True, reference)

    def void(self, *, authorization: str) -> ProviderOutcome:
        self._wait()
        return ProviderOutcome(True, self._reference("void", authorization))

    def refund(self, *, idempotency_key: str, payment_reference: str, amount: Decimal) -> ProviderOutcome:
        self._wait()
        return ProviderOutcome(True, self._reference("ref", idempotency_key))

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def webhook(
        self, event_type: str, data: dict[str, Any], event_id: str | None = None
    ) -> tuple[bytes, str]:
        """A signed webhook as this provider would send it: (body, signature header value)."""
        event = {"id": event_id or f"evt_{uuid.uuid4().hex}", "type": event_type, "data": data}
        body = json.dumps(event).encode()
        return body, self.sign(body)

    def verify_webhook(self, body: bytes, signature: str | None) -> dict[str, Any]:
        if not signature or not hmac.compare_digest(self.sign(body), signature):
            raise Unauthorized("webhook signature does not match", field=WEBHOOK_SIGNATURE_HEADER)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise Unprocessable("the webhook body is not JSON", field="body") from exc


@lru_cache
def get_payment_provider() -> PaymentProvider:
    return SimulatedPaymentProvider(SimulatedProviderSettings(), get_settings().payment_webhook_secret)


def record_webhook_event(session: Session, event_id: str, event_type: str, payload: dict[str, Any]) -> bool:
    """Remember a webhook by the provider's event id; False when it was seen before."""
    inserted = session.execute(
        insert(PaymentWebhookEvent)
        .values(provider_event_id=event_id, event_type=event_type, payload=payload)
        .on_conflict_do_nothing(index_elements=[PaymentWebhookEvent.provider_event_id])
        .returning(PaymentWebhookEvent.provider_event_id)
    ).scalar()
    return inserted is not None


def captured_payment(session: Session, order_id: uuid.UUID) -> Payment | None:
    return session.scalar(
        select(Payment)
        .where(
            Payment.order_id == order_id,
            Payment.status.in_([PaymentStatus.captured, PaymentStatus.partially_refunded]),
        )
        .with_for_update()
    )


def refund_sub_order(session: Session, provider: PaymentProvider, sub_order: SubOrder) -> Refund | None:
    """Refund a seller's share of a paid order through the provider (None when nothing was paid).

    The provider call is keyed by the sub-order, so a retry after a failure refunds once."""
    payment = captured_payment(session, sub_order.order_id)
    if payment is None:
        return None
    amount = sub_order.items_total + sub_order.tax_total + sub_order.shipping_total
    if payment.refunded_amount + amount > payment.amount:
        raise Conflict("the refund would exceed the captured amount", field="amount")
    outcome = provider.refund(
        idempotency_key=f"refund:{sub_order.id}", payment_reference=payment.provider_reference, amount=amount
    )
    if not outcome.succeeded:
        raise Conflict(f"the payment provider refused the refund: {outcome.failure_reason}", field="payment")
    refund = Refund(
        payment_id=payment.id,
        sub_order_id=sub_order.id,
        tenant_id=sub_order.tenant_id,
        buyer_id=sub_order.buyer_id,
        amount=amount,
        provider_reference=outcome.reference,
    )
    session.add(refund)
    payment.refunded_amount += amount
    payment.status = (
        PaymentStatus.refunded
        if payment.refunded_amount == payment.amount
        else PaymentStatus.partially_refunded
    )
    session.flush()
    return refund


def next_attempt(session: Session, order_id: uuid.UUID) -> int:
    return (session.scalar(select(func.max(Payment.attempt)).where(Payment.order_id == order_id)) or 0) + 1
