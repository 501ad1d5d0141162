from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from transactional.api.deps import OptionalPrincipal, StorefrontSessionDep
from transactional.api.openapi import json_body
from transactional.errors import PayloadTooLarge
from transactional.services import events
from transactional.services.events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, EventBatchIn, IngestResult

router = APIRouter(prefix="/v1", tags=["events"])


async def batch_body(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it outgrows the batch limit."""
    too_large = PayloadTooLarge(f"a batch body holds at most {MAX_BATCH_BYTES} bytes", field="body")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BATCH_BYTES:
            raise too_large
    return bytes(body)


@router.post(
    "/events",
    response_model=IngestResult,
    summary="Record a batch of shopper events",
    description=(
        f"Up to {MAX_BATCH_EVENTS} events (and {MAX_BATCH_BYTES // 2**20} MiB) per call; the batch is stored"
        " whole or, when any event is invalid, not at all (422 naming `events.<index>.<field>`). An"
        " `event_id` already stored is counted in `duplicates` and ignored, so retries are safe.\n\n"
        "Anyone may post. A signed-in shopper's events are attributed to them (`user_id` may be omitted"
        " and must not name someone else); anonymous callers and sellers send `anonymous_id` and may not"
        " set `user_id`; platform admins (collectors, back-fills) may set any `user_id`. `tenant_id` is"
        " taken from the product when it is known."
    ),
    openapi_extra=json_body(EventBatchIn),
)
def record_events(
    body: Annotated[bytes, Depends(batch_body)], principal: OptionalPrincipal, session: StorefrontSessionDep
) -> IngestResult:
    batch = events.parse_event_batch(body)
    events.attribute_to_caller(batch, principal)
    return events.ingest_events(session, batch)
