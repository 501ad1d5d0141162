"""Server-side impressions: what a serving response showed, recorded as shopper events.

An experiment's report needs to know who saw which variant's items. Clients may forget to send
impressions (or send them for what was returned, not shown, or not at all when blocked), so the
serving app records them itself for every response that took part in an experiment: one
`impression` event per item, with its position, the search query, and the context keys
(`serving.experiments.CONTEXT_KEYS`) that clients echo on the clicks and add-to-carts that follow.
Responses outside experiments record nothing here: clients' own events cover them, and writing
every result list would multiply the event volume for no report.

Recording only enqueues; a background thread writes batches through the public events service
(`transactional.services.events.ingest_events`, platform scope, so events may name the shopper),
off the request path. When the database lags, the queue is bounded and further impressions are
dropped and counted (`marketlake_serving_impressions_dropped_total`) rather than slowing requests.

Who: a signed-in shopper by user id, otherwise the `X-Anonymous-ID` header (a device or cookie
id); the session is the `X-Session-ID` header (or, when absent, the response's own request id).
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header
from prometheus_client import Counter

from serving.config import get_serving_settings
from serving.experiments import ExperimentTag
from transactional.api.deps import OptionalPrincipal
from transactional.db import PLATFORM, session_scope
from transactional.observability import log
from transactional.services.events import MAX_BATCH_EVENTS, ImpressionEvent, ingest_events

RECORDED = Counter("marketlake_serving_impressions_recorded_total", "Impression events written")
DROPPED = Counter("marketlake_serving_impressions_dropped_total", "Impressions dropped: the queue was full")
TOKEN = r"^[A-Za-z0-9._:-]+$"


@dataclass(frozen=True)
class Shopper:
    user_id: uuid.UUID | None
    anonymous_id: str | None
    session_id: str | None

    @property
    def key(self) -> str | None:
        """What experiments hash: the user id, else the anonymous id (never confused with one)."""
        if self.user_id is not None:
            return str(self.user_id)
        return f"anon:{self.anonymous_id}" if self.anonymous_id else None


async def current_shopper(
    principal: OptionalPrincipal,
    anonymous_id: Annotated[str | None, Header(alias="X-Anonymous-ID", min_length=1, max_length=128, pattern=TOKEN,
                                               description="device or cookie id of a shopper not signed in")] = None,
    session_id: Annotated[str | None, Header(alias="X-Session-ID", min_length=1, max_length=128, pattern=TOKEN,
                                             description="the shopper's browsing session (as in shopper events)")]
    = None,
) -> Shopper:
    """Async: a plain function runs here, not in a worker thread (which a sync dependency costs)."""
    return Shopper(principal.user_id if principal is not None else None, anonymous_id, session_id)


ShopperDep = Annotated[Shopper, Depends(current_shopper)]


@dataclass(frozen=True)
class _Shown:
    occurred_at: datetime
    shopper: Shopper
    context: dict[str, str]
    product_ids: tuple[str, ...]
    query: str | None


def _events(shown: _Shown) -> list[ImpressionEvent]:
    session_id = shown.shopper.session_id or f"srv-{shown.context['request_id']}"
    return [ImpressionEvent(type="impression", event_id=uuid.uuid4(), user_id=shown.shopper.user_id,
                            anonymous_id=shown.shopper.anonymous_id, session_id=session_id,
                            occurred_at=shown.occurred_at, product_id=uuid.UUID(product_id), position=position,
                            query=shown.query or None, context=shown.context)
            for position, product_id in enumerate(shown.product_ids)]


def _write(events: list[ImpressionEvent]) -> None:
    with session_scope(PLATFORM) as session:
        ingest_events(session, events)


class ImpressionLog:
    def __init__(self, write: Callable[[list[ImpressionEvent]], None] = _write, capacity: int = 100_000) -> None:
        self._write = write
        self._queue: queue.Queue[_Shown] = queue.Queue(capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, shopper: Shopper, tag: ExperimentTag, product_ids: Sequence[str],
               query: str | None = None) -> None:
        """Queue the response's items as impressions if it took part in an experiment (never blocks)."""
        if tag.experiment is None or not product_ids or shopper.key is None:
            return
        try:
            self._queue.put_nowait(_Shown(datetime.now(UTC), shopper, tag.event_context, tuple(product_ids), query))
        except queue.Full:
            DROPPED.inc(len(product_ids))

    def flush(self) -> int:
        """Write everything queued so far; the impressions written."""
        batch: list[ImpressionEvent] = []
        written = 0
        while True:
            try:
                batch.extend(_events(self._queue.get_nowait()))
            except queue.Empty:
                break
            if len(batch) >= MAX_BATCH_EVENTS:
                written += self._write_batch(batch)
                batch = []
        return written + (self._write_batch(batch) if batch else 0)

    def _write_batch(self, batch: list[ImpressionEvent]) -> int:
        try:
            self._write(batch)
        except Exception:  # the database is away: these impressions are lost, requests are not
            DROPPED.inc(len(batch))
            log.warning("impressions not written", events=len(batch), exc_info=True)
            return 0
        RECORDED.inc(len(batch))
        return len(batch)

    def start(self, flush_seconds: float) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, args=(flush_seconds,), name="impressions",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer after a last flush."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None

    def _follow(self, flush_seconds: float) -> None:
        while not self._stop.wait(flush_seconds):
            self.flush()
        self.flush()


impressions = ImpressionLog(capacity=get_serving_settings().impression_queue_size)
