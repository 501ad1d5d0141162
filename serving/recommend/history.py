"""What each shopper did lately, in memory: the session behind "because you viewed X", the cart,
and what they already bought.

Histories follow the shopper events feed (the search service reads it every refresh interval and
hands each batch to `observe`), so a view is reflected in the next refresh, within seconds.
A signed-in shopper not seen since start-up is read once from PostgreSQL (their latest events
and their orders, by indexed columns) and kept, bounded by an LRU; the read is repeated after
`ttl_seconds`, which also picks up orders placed without a purchase event. Anonymous shoppers
(`anon:<anonymous_id>`) are known from the feed only: their sessions are short, and events are not
indexed by anonymous id.

Every change to a history takes a new, process-wide generation number; the result cache keys on
it, so a shopper's new event invalidates exactly their cached results."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy import text

from serving.search.catalog_source import INTERACTION_WEIGHTS
from transactional.db import owner_engine
from transactional.observability import log

ANONYMOUS_PREFIX = "anon:"
# Events that say something about a product the shopper is interested in (impressions do not).
TRACKED_EVENTS = ("view", "click", "add_to_cart", "remove_from_cart", "purchase")
PURCHASED_ORDER_STATUSES = ("PAID", "PACKED", "SHIPPED", "DELIVERED")
_generations = itertools.count(1)


def user_key(user_id: uuid.UUID | str | None, anonymous_id: str | None) -> str | None:
    """How recommendations, experiments and caches name a shopper."""
    if user_id is not None:
        return str(user_id)
    return f"{ANONYMOUS_PREFIX}{anonymous_id}" if anonymous_id else None


@dataclass(frozen=True)
class Interaction:
    event_id: str
    event_type: str
    product_id: str
    at: float  # epoch seconds

    @property
    def weight(self) -> float:
        return INTERACTION_WEIGHTS.get(self.event_type, 0.0)


@dataclass(frozen=True)
class History:
    recent: tuple[Interaction, ...] = ()  # newest first
    purchased: frozenset[str] = frozenset()
    generation: int = 0
    read_at: float | None = None  # monotonic time of the database read; None: from the feed only

    def interests(self, limit: int) -> list[Interaction]:
        """The latest `limit` interactions that show interest (views, clicks, carts, purchases)."""
        return [event for event in self.recent if event.weight > 0][:limit]

    def cart(self) -> list[str]:
        """Products added to the cart and not removed or bought since, newest first."""
        settled: set[str] = set()
        carted: list[str] = []
        for event in self.recent:
            if event.product_id in settled:
                continue
            if event.event_type == "add_to_cart":
                carted.append(event.product_id)
            if event.event_type in ("add_to_cart", "remove_from_cart", "purchase"):
                settled.add(event.product_id)
        return carted

    def latest_purchases(self) -> list[str]:
        return list(dict.fromkeys(event.product_id for event in self.recent if event.event_type == "purchase"))

    def merged(self, events: Iterable[Interaction], limit: int, purchased: Iterable[str] = (),
               read_at: float | None = None) -> History:
        known = {event.event_id for event in self.recent}
        fresh = [event for event in events if event.event_id not in known]
        ordered = sorted([*self.recent, *fresh], key=lambda event: event.at, reverse=True)[:limit]
        bought = self.purchased | frozenset(purchased) | {e.product_id for e in fresh if e.event_type == "purchase"}
        return History(tuple(ordered), frozenset(bought), next(_generations),
                       self.read_at if read_at is None else read_at)


Reader = Callable[[str, int], History]


def read_history(key: str, limit: int) -> History:
    """A signed-in shopper's latest tracked events and everything they bought, from PostgreSQL in
    one round trip (rows with an event id are events; those without, bought products)."""
    with owner_engine().connect() as connection:
        rows = connection.execute(text(
            "(SELECT event_id::text, event_type, product_id::text, extract(epoch FROM occurred_at)"
            " FROM shopper_events WHERE user_id = :user AND product_id IS NOT NULL AND event_type = ANY(:types)"
            " ORDER BY occurred_at DESC LIMIT :limit)"
            " UNION ALL SELECT NULL, NULL, product_id::text, NULL FROM ("
            " SELECT product_id FROM shopper_events"
            " WHERE user_id = :user AND event_type = 'purchase' AND product_id IS NOT NULL"
            " UNION SELECT i.product_id FROM orders AS o JOIN order_items AS i ON i.order_id = o.id"
            " WHERE o.buyer_id = :user AND o.status::text = ANY(:statuses)) AS bought"),
            {"user": uuid.UUID(key), "types": list(TRACKED_EVENTS), "limit": limit,
             "statuses": list(PURCHASED_ORDER_STATUSES)}).all()
    events = [Interaction(event_id, event_type, product_id, float(at))
              for event_id, event_type, product_id, at in rows if event_id is not None]
    purchased = [product_id for event_id, _, product_id, _ in rows if event_id is None]
    return History().merged(events, limit, purchased, read_at=time.monotonic())


def _is_signed_in(key: str) -> bool:
    return not key.startswith(ANONYMOUS_PREFIX)


class ShopperHistories:
    def __init__(self, max_events: int = 50, max_users: int = 200_000, ttl_seconds: float = 300.0,
                 reader: Reader = read_history) -> None:
        self.max_events = max_events
        self.ttl_seconds = ttl_seconds
        self._reader = reader
        self._entries: LRUCache[str, History] = LRUCache(max_users)
        self._lock = threading.Lock()

    def get(self, key: str | None) -> History:
        """The shopper's history (empty for nobody); a signed-in shopper's is read from the database
        the first time and once its `ttl_seconds` have passed."""
        if key is None:
            return History()
        with self._lock:
            entry = self._entries.get(key)
        if not self._must_read(key, entry):
            return entry or History()
        try:
            read = self._reader(key, self.max_events)
        except Exception as error:  # a database blip: serve what the feed told us, read again next time
            log.warning("shopper history could not be read", error=str(error).splitlines()[0] if str(error) else "")
            return entry or History()
        with self._lock:
            # Feed events that arrived meanwhile are merged in (the read may or may not hold them).
            current = self._entries.get(key) or History()
            entry = self._entries[key] = read.merged(current.recent, self.max_events, current.purchased,
                                                     read_at=read.read_at)
        return entry

    def must_read(self, key: str | None) -> bool:
        """Whether `get` would read the database for this shopper."""
        if key is None:
            return False
        with self._lock:
            entry = self._entries.get(key)
        return self._must_read(key, entry)

    def _must_read(self, key: str, entry: History | None) -> bool:
        return _is_signed_in(key) and (entry is None or entry.read_at is None
                                       or time.monotonic() - entry.read_at >= self.ttl_seconds)

    def observe(self, events: list[dict]) -> None:
        """A batch from the shopper events feed."""
        by_key: dict[str, list[Interaction]] = {}
        for event in events:
            if event["event_type"] not in TRACKED_EVENTS or event["product_id"] is None:
                continue
            key = user_key(event["user_id"], event["anonymous_id"])
            if key is not None:
                by_key.setdefault(key, []).append(Interaction(
                    str(event["event_id"]), event["event_type"], str(event["product_id"]),
                    event["occurred_at"].timestamp()))
        with self._lock:
            for key, interactions in by_key.items():
                current = self._entries.get(key) or History()
                self._entries[key] = current.merged(interactions, self.max_events)
