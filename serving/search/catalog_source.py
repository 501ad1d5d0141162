"""Reading the catalog and shopper signals from PostgreSQL for the search index.

The index reads as the owner (`owner_engine`), like every change-feed reader: it needs the outbox,
and it applies the storefront's own visibility rule itself (an active, live, priced product of an
active tenant), which is what a shopper-scope session would see through `storefront.browse_products`.

Change events only say *what* changed; the index always re-reads the current rows, so replaying
an event twice, or out of order with a full rebuild, converges to the same index."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from serving.search.documents import ProductDocument, attribute_pairs
from transactional.services.change_feed import Feed, FeedPosition

_BROWSABLE = "t.status = 'active' AND p.status = 'active' AND p.deleted_at IS NULL AND p.min_price IS NOT NULL"
_DOCUMENTS = """
SELECT p.id::text AS id, p.tenant_id::text AS tenant_id, p.title, p.description, p.brand, p.attributes,
       p.images, p.min_price, p.rating_avg, p.rating_count, extract(epoch FROM p.created_at) AS created_at,
       c.slug AS category, t.store_name, sku.currency, sku.attributes AS sku_attributes,
       coalesce(stock.available, 0) AS available
FROM products AS p
JOIN tenants AS t ON t.id = p.tenant_id
LEFT JOIN categories AS c ON c.id = p.category_id
LEFT JOIN LATERAL (
    SELECT min(s.currency) AS currency, jsonb_agg(s.attributes) AS attributes
    FROM skus AS s WHERE s.product_id = p.id AND s.is_active
) AS sku ON true
LEFT JOIN LATERAL (
    SELECT sum(l.available) AS available
    FROM skus AS s JOIN inventory_levels AS l ON l.sku_id = s.id
    WHERE s.product_id = p.id AND s.is_active
) AS stock ON true
WHERE """ + _BROWSABLE
_SCOPED = (" AND (p.id = ANY(CAST(:product_ids AS uuid[])) OR p.tenant_id = ANY(CAST(:tenant_ids AS uuid[]))"
           " OR p.category_id = ANY(CAST(:category_ids AS uuid[])))")

# Shopper signals: how much an interaction says about interest in a product.
INTERACTION_WEIGHTS = {"view": 1.0, "click": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


@dataclass(frozen=True)
class Category:
    id: str
    slug: str
    name: str


def _ancestors(slug: str) -> list[str]:
    segments = slug.split("/")
    return ["/".join(segments[: depth + 1]) for depth in range(len(segments))]


class CategoryNames:
    """Slug path -> names from the root ("fashion/shoes" -> ("Fashion", "Shoes"))."""

    def __init__(self, categories: Iterable[Category]) -> None:
        self.by_id = {category.id: category for category in categories}
        name_of = {category.slug: category.name for category in self.by_id.values()}
        self._names = {slug: tuple(name_of.get(ancestor, "") for ancestor in _ancestors(slug)) for slug in name_of}

    def names(self, slug: str | None) -> tuple[str, ...]:
        return self._names.get(slug, ()) if slug else ()

    def with_descendants(self, category_ids: set[str]) -> set[str]:
        """The categories and every category below them: a product's names include its ancestors'."""
        slugs = [self.by_id[category_id].slug for category_id in category_ids if category_id in self.by_id]
        return category_ids | {category.id for category in self.by_id.values()
                               if any(category.slug.startswith(slug + "/") for slug in slugs)}


def load_categories(connection: Connection) -> CategoryNames:
    rows = connection.execute(text("SELECT id::text, slug, name FROM categories"))
    return CategoryNames(Category(*row) for row in rows)


def _document(row: Any, categories: CategoryNames) -> ProductDocument:
    images = row.images or []
    first_image = images[0] if images else None
    sku_attributes = row.sku_attributes or []
    return ProductDocument(
        id=row.id,
        title=row.title,
        description=row.description or "",
        brand=row.brand,
        category=row.category,
        category_names=categories.names(row.category),
        attributes=attribute_pairs(row.attributes, *sku_attributes),
        tenant_id=row.tenant_id,
        store_name=row.store_name,
        price=float(row.min_price),
        currency=row.currency or "USD",
        rating_avg=float(row.rating_avg) if row.rating_avg is not None else None,
        rating_count=row.rating_count,
        in_stock=row.available > 0,
        created_at=float(row.created_at),
        image=(first_image.get("url") if isinstance(first_image, dict) else first_image),
    )


def count_browsable(connection: Connection) -> int:
    return connection.execute(text(
        "SELECT count(*) FROM products AS p JOIN tenants AS t ON t.id = p.tenant_id WHERE " + _BROWSABLE)).scalar()


def browsable_documents(connection: Connection, categories: CategoryNames, batch_size: int = 5000
                        ) -> Iterator[ProductDocument]:
    """Every product shoppers can see, streamed."""
    result = connection.execution_options(yield_per=batch_size).execute(text(_DOCUMENTS))
    for row in result:
        yield _document(row, categories)


def scoped_documents(connection: Connection, categories: CategoryNames, scope: ChangeScope
                     ) -> list[ProductDocument]:
    """The browsable products among those a batch of changes touched."""
    rows = connection.execute(text(_DOCUMENTS + _SCOPED), {
        "product_ids": sorted(scope.product_ids), "tenant_ids": sorted(scope.tenant_ids),
        "category_ids": sorted(scope.category_ids),
    })
    return [_document(row, categories) for row in rows]


CAPTURED_ACTIONS = (".created", ".updated", ".deleted")
# aggregate -> (payload key, ChangeScope set it names)
_TOUCHES = {
    "product": ("id", "product_ids"), "sku": ("product_id", "product_ids"), "inventory": ("sku_id", "sku_ids"),
    "tenant": ("id", "tenant_ids"), "category": ("id", "category_ids"),
}


@dataclass
class ChangeScope:
    """What a batch of outbox events touched, as far as search is concerned."""

    product_ids: set[str] = field(default_factory=set)
    tenant_ids: set[str] = field(default_factory=set)
    category_ids: set[str] = field(default_factory=set)
    sku_ids: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.product_ids or self.tenant_ids or self.category_ids or self.sku_ids)

    def add(self, event: dict[str, Any]) -> None:
        """Note what a captured row change touched. Domain events (e.g. inventory.low_stock) say
        nothing the row changes that caused them do not, so they are skipped."""
        if not event["event_type"].endswith(CAPTURED_ACTIONS):
            return
        aggregate, payload = event["aggregate_type"], event["payload"] or {}
        key, target = _TOUCHES.get(aggregate, (None, None))
        if key is not None and payload.get(key):
            getattr(self, target).add(payload[key])

    def resolve_skus(self, connection: Connection) -> None:
        """Stock changes name SKUs; search indexes products."""
        if self.sku_ids:
            rows = connection.execute(
                text("SELECT product_id::text FROM skus WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": sorted(self.sku_ids)})
            self.product_ids.update(row[0] for row in rows)
            self.sku_ids.clear()


_FEED_END = {
    "outbox": "SELECT txid::text::bigint, id FROM outbox",
    "shopper_events": "SELECT txid::text::bigint, seq FROM shopper_events",
}


def feed_end(connection: Connection, feed: Feed) -> FeedPosition:
    """The position after the last settled row of `feed` (see transactional.services.change_feed):
    a reader starting here misses nothing committed later."""
    row = connection.execute(text(
        _FEED_END[feed] + " WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY 1 DESC, 2 DESC LIMIT 1"
    )).first()
    return FeedPosition(int(row[0]), int(row[1])) if row else FeedPosition()


_WEIGHT_CASE = "CASE event_type " + " ".join(
    f"WHEN '{event}' THEN {weight}" for event, weight in INTERACTION_WEIGHTS.items()) + " END"


def product_popularity(connection: Connection, since: datetime) -> dict[str, float]:
    """Weighted interactions per product since `since`."""
    rows = connection.execute(text(
        f"SELECT product_id::text, sum({_WEIGHT_CASE}) FROM shopper_events"
        " WHERE product_id IS NOT NULL AND occurred_at >= :since AND event_type = ANY(:types)"
        " GROUP BY product_id"
    ), {"since": since, "types": list(INTERACTION_WEIGHTS)})
    return {product_id: float(weight) for product_id, weight in rows}


def search_sessions(connection: Connection, since: datetime) -> list[tuple[str, str]]:
    """(query, session) pairs of search events since `since`, one per session and query."""
    rows = connection.execute(text(
        "SELECT DISTINCT query, session_id FROM shopper_events"
        " WHERE event_type = 'search' AND query IS NOT NULL AND occurred_at >= :since"
    ), {"since": since})
    return [(query, session) for query, session in rows]


def recent_interactions(connection: Connection, user_id: uuid.UUID, limit: int) -> list[tuple[str, float]]:
    """A shopper's latest (product, weight) interactions, newest first."""
    rows = connection.execute(text(
        f"SELECT product_id::text, {_WEIGHT_CASE} FROM shopper_events"
        " WHERE user_id = :user AND product_id IS NOT NULL AND event_type = ANY(:types)"
        " ORDER BY occurred_at DESC LIMIT :limit"
    ), {"user": user_id, "types": list(INTERACTION_WEIGHTS), "limit": limit})
    return [(product_id, float(weight)) for product_id, weight in rows]


def lookback(days: int) -> datetime:
    return datetime.now().astimezone() - timedelta(days=days)
