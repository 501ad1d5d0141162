"""Payment provider webhooks (signed; each event acted on once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from transactional.api.routes.orders import ProviderDep
from transactional.db import PLATFORM, session_scope
from transactional.errors import Unprocessable
from transactional.services import checkout, payments
from transactional.services.payments import WEBHOOK_SIGNATURE_HEADER, PaymentProvider

router = APIRouter(prefix="/v1/payments", tags=["payments"])


class WebhookAck(BaseModel):
    event_id: str
    outcome: str  # settled | ignored | duplicate


def _handle(provider: PaymentProvider, body: bytes, signature: str | None) -> WebhookAck:
    event = provider.verify_webhook(body, signature)
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise Unprocessable("a webhook event has a string id and type", field="body")
    with session_scope(PLATFORM) as session:
        if not payments.record_webhook_event(session, event["id"], event["type"], event):
            return WebhookAck(event_id=event["id"], outcome="duplicate")
        return WebhookAck(event_id=event["id"], outcome=checkout.apply_webhook(session, provider, event))


@router.post(
    "/webhooks/simulated",
    response_model=WebhookAck,
    summary="Events from the simulated provider, signed with HMAC-SHA256 of the raw body",
    responses={401: {"description": "missing or wrong signature"}},
)
async def simulated_webhook(
    request: Request,
    provider: ProviderDep,
    signature: Annotated[str | None, Header(alias=WEBHOOK_SIGNATURE_HEADER)] = None,
) -> WebhookAck:
    # The signature covers the exact bytes sent, so the raw body is read rather than parsed JSON.
    return await run_in_threadpool(_handle, provider, await request.body(), signature)
