"""Shopper events: validate a batch, attribute it to the caller, store it with one statement.

Events are an append-only log that clients retry freely: each carries a client-made `event_id`,
and a repeated id is counted as a duplicate instead of being stored twice. A batch is validated
whole before anything is written, so it is stored entirely or not at all.

Who an event is about (`user_id`) is decided by the caller's identity, never by the body alone:
- a signed-in shopper's events are theirs: `user_id` may be omitted (it is filled in) and must
  not name anyone else;
- anonymous callers and sellers may not attribute events to a user: they send `anonymous_id`;
- the platform (trusted collectors, back-fills) may attribute events to any user.

`tenant_id` is the product's seller when the product is known (a client cannot credit another
store with its events); events without a known product keep the tenant they were sent with.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError,
)
from pydantic_core import PydanticCustomError, to_json
from sqlalchemy import text
from sqlalchemy.orm import Session

from transactional.errors import PayloadTooLarge, Unprocessable
from transactional.models import Role
from transactional.services.security import Principal

MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 4 * 2**20
# Client clocks drift; an event further ahead than this is a client bug, not a late event.
FUTURE_TOLERANCE = timedelta(minutes=10)

EventType = Literal["impression", "view", "search", "click", "add_to_cart", "remove_from_cart", "purchase"]
EVENT_TYPES: tuple[str, ...] = EventType.__args__


def _not_in_future(moment: datetime) -> datetime:
    if moment > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise PydanticCustomError("in_future", "is more than {minutes} minutes in the future",
                                  {"minutes": int(FUTURE_TOLERANCE.total_seconds() // 60)})
    return moment


Identifier = Annotated[str, Field(min_length=1, max_length=128)]
SearchQuery = Annotated[str, Field(min_length=1, max_length=500)]
Position = Annotated[int, Field(ge=0, le=100_000, description="0-based rank in the list shown")]
Quantity = Annotated[int, Field(ge=1, le=10_000)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID = Field(description="made by the client; a repeated id is ignored as a duplicate")
    user_id: uuid.UUID | None = Field(None, description="the signed-in shopper (see attribution rules)")
    anonymous_id: Identifier | None = Field(None, description="a device or cookie id for anonymous shoppers")
    session_id: Identifier
    occurred_at: Annotated[AwareDatetime, AfterValidator(_not_in_future)]
    tenant_id: uuid.UUID | None = Field(None, description="the store, for events not about a known product")
    context: dict[str, Any] = Field(default_factory=dict, description="page, device, referrer, ... (any JSON)")


class _ProductEvent(_Event):
    product_id: uuid.UUID
    sku_id: uuid.UUID | None = None


class _ListedProductEvent(_ProductEvent):
    position: Position | None = None
    query: SearchQuery | None = Field(None, description="the search that listed the product, if any")


class _QuantityEvent(_ProductEvent):
    quantity: Quantity = 1


class ImpressionEvent(_ListedProductEvent):
    type: Literal["impression"]


class ClickEvent(_ListedProductEvent):
    type: Literal["click"]


class ViewEvent(_ProductEvent):
    type: Literal["view"]


class SearchEvent(_Event):
    type: Literal["search"]
    query: SearchQuery
    context: dict[str, Any] = Field(default_factory=dict, description=(
        "as for any event, plus what the search found, which search analytics read: `result_count` (results"
        " the query as typed found; 0 when nothing matched, even if relaxed results were shown), `results_shown`"
        " (ids of the products shown, in order) and `relaxed` (true when those came from a relaxed query)"))


class AddToCartEvent(_QuantityEvent):
    type: Literal["add_to_cart"]


class RemoveFromCartEvent(_QuantityEvent):
    type: Literal["remove_from_cart"]


class PurchaseEvent(_QuantityEvent):
    type: Literal["purchase"]


ShopperEventIn = Annotated[
    ImpressionEvent | ViewEvent | SearchEvent | ClickEvent | AddToCartEvent | RemoveFromCartEvent | PurchaseEvent,
    Field(discriminator="type"),
]


class EventBatchIn(BaseModel):
    events: list[ShopperEventIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


EVENT_BATCH = TypeAdapter(EventBatchIn)
_NUL_ESCAPE = b"\\u0000"
EVENTS = TypeAdapter(list[ShopperEventIn])


class IngestResult(BaseModel):
    accepted: int = Field(description="events stored by this call")
    duplicates: int = Field(description="events whose event_id was already stored (ignored)")


def _field(location: tuple[int | str, ...], error_type: str) -> str:
    """`events.3.query` for an error pydantic places at ('events', 3, 'search', 'query')."""
    parts = [str(part) for part in location]
    if len(parts) > 2 and parts[0] == "events" and parts[2] in EVENT_TYPES:
        del parts[2]
    if error_type.startswith("union_tag"):
        parts.append("type")
    return ".".join(parts) or "body"


def _reject_nul_characters(events: list[ShopperEventIn]) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000; name the fields instead of failing the insert."""
    fields = [f"events.{index}.{name}" for index, event in enumerate(events)
              for name, value in event.__dict__.items() if _NUL_ESCAPE in to_json(value)]
    if fields:
        raise Unprocessable("text may not contain the NUL character (U+0000)",
                            errors=[{"field": field, "reason": "contains U+0000"} for field in fields])


def parse_event_batch(body: bytes) -> list[ShopperEventIn]:
    """The events of a raw JSON batch, or one 422 listing every invalid field (413 when too many)."""
    try:
        events = EVENT_BATCH.validate_json(body).events
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        if any(error["type"] == "too_long" and error["loc"] == ("events",) for error in errors):
            raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH_EVENTS} events", field="events") from None
        problems = [{"field": _field(error["loc"], error["type"]), "reason": error["msg"]} for error in errors]
        raise Unprocessable(f"{len(problems)} invalid field(s) in the batch", errors=problems) from None
    # JSON can only carry U+0000 escaped, so the walk is needed only when the escape appears.
    if _NUL_ESCAPE in body:
        _reject_nul_characters(events)
    return events


def attribute_to_caller(events: Sequence[ShopperEventIn], caller: Principal | None) -> None:
    """Apply the attribution rules above in place; 422 naming each offending event and field."""
    shopper = caller.user_id if caller is not None and caller.role == Role.buyer else None
    trusted = caller is not None and caller.role == Role.platform_admin
    problems = []
    for index, event in enumerate(events):
        if shopper is not None and event.user_id is None:
            event.user_id = shopper
        elif shopper is not None and event.user_id != shopper:
            problems.append({"field": f"events.{index}.user_id", "reason": "must be the signed-in shopper (or omitted)"})
        elif shopper is None and event.user_id is not None and not trusted:
            problems.append({"field": f"events.{index}.user_id",
                             "reason": "only a signed-in shopper's own events may name a user; send anonymous_id"})
        if event.user_id is None and event.anonymous_id is None:
            problems.append({"field": f"events.{index}.anonymous_id", "reason": "give user_id or anonymous_id"})
    if problems:
        raise Unprocessable(f"{len(problems)} event(s) cannot be attributed", errors=problems)


INSERT_EVENTS = text(
    """
    INSERT INTO shopper_events (event_id, event_type, user_id, anonymous_id, session_id, occurred_at,
                                tenant_id, product_id, sku_id, query, position, quantity, context)
    SELECT e.event_id, e.type, e.user_id, e.anonymous_id, e.session_id, e.occurred_at,
           coalesce(p.tenant_id, e.tenant_id), e.product_id, e.sku_id, e.query, e.position, e.quantity,
           coalesce(e.context, '{}')
    FROM json_to_recordset(CAST(:events AS json))
         AS e(event_id uuid, type text, user_id uuid, anonymous_id text, session_id text,
              occurred_at timestamptz, tenant_id uuid, product_id uuid, sku_id uuid, query text,
              position integer, quantity integer, context jsonb)
    LEFT JOIN products AS p ON p.id = e.product_id
    ON CONFLICT (event_id) DO NOTHING
    """
)


def ingest_events(session: Session, events: Sequence[ShopperEventIn]) -> IngestResult:
    """Store validated events with one statement; ids already stored count as duplicates.

    The batch travels as one JSON document that PostgreSQL unpacks into rows: serialising it in
    pydantic's Rust core and parsing it in the server is several times cheaper than adapting a
    Python value per column per event (measured: see benchmarks/bench_events.py). Run it in the
    platform or shopper scope so every product's tenant is visible."""
    if not events:
        return IngestResult(accepted=0, duplicates=0)
    document = EVENTS.dump_json(list(events), exclude_none=True).decode()
    accepted = session.execute(INSERT_EVENTS, {"events": document}).rowcount
    return IngestResult(accepted=accepted, duplicates=len(events) - accepted)
