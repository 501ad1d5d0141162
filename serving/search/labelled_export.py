"""Labelled search sets made from the live database, in the files `evaluate-search` reads.

There is no human-judged product-search set, so two are derived, each with its bias stated:

`structure`: queries built from the catalog's own vocabulary, graded by how well a product
matches what the query names:
  "<category>"                   2 = in that category, 1 = in a sibling category
  "<brand> <category>"           3 = that brand in that category, 1 = the category, another brand
  "<attribute value> <category>" 3 = the category with that value (e.g. colour red), 1 = the category
  Category names are indexed text, so this set favours lexical matching; it checks that the
  obvious queries work, not that meaning is understood.

`sessions`: what shoppers did after searching. Each search event (bots excluded) is a query;
the products the same session then clicked or viewed (grade 1), carted (2) or bought (3) before
its next search are its judgments. Clicks follow what was shown, so this set favours the ranking
that produced the log (position bias); it is still the closest to real relevance we have. Only
the latest `test_share` of searches are queries; interactions before them are written as the
shoppers' history (for personalisation and popularity), so nothing from the future leaks in.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text

from serving.search.catalog_source import INTERACTION_WEIGHTS, browsable_documents, load_categories
from serving.search.documents import ProductDocument
from serving.search.evaluation import write_rows

PRODUCT_COLUMNS = ("id", "title", "description", "category", "brand", "price", "tenant_id", "rating_avg",
                   "rating_count", "in_stock")
MIN_CATEGORY_PRODUCTS = 3


@dataclass(frozen=True)
class ExportSummary:
    products: int
    queries: int
    judgments: int
    interactions: int = 0


def _product_row(document: ProductDocument) -> dict:
    return {"id": document.id, "title": document.title, "description": document.description,
            "category": " > ".join(document.category_names), "brand": document.brand or "",
            "price": document.price, "tenant_id": document.tenant_id, "rating_avg": document.rating_avg,
            "rating_count": document.rating_count, "in_stock": document.in_stock}


def _write_set(directory: Path, products: list[ProductDocument], queries: list[dict], judgments: list[dict],
               interactions: list[dict] | None = None) -> ExportSummary:
    written = ExportSummary(
        products=write_rows(directory / "products.jsonl", map(_product_row, products), PRODUCT_COLUMNS),
        queries=write_rows(directory / "queries.csv", queries, ("id", "text", "user")),
        judgments=write_rows(directory / "judgments.csv", judgments, ("query_id", "product_id", "grade")),
    )
    if interactions is None:
        return written
    count = write_rows(directory / "interactions.csv", interactions, ("user", "product_id", "weight"))
    return ExportSummary(written.products, written.queries, written.judgments, count)


def _attribute_values(document: ProductDocument) -> set[str]:
    """"colour red" -> "red": the value half of each attribute pair."""
    return {pair.split(" ", 1)[1].lower() for pair in document.attributes if " " in pair}


def _leaf_value(document: ProductDocument) -> str:
    return document.category_names[-1].lower()


def structure_set(products: list[ProductDocument], max_queries: int, seed: int = 0
                  ) -> tuple[list[dict], list[dict]]:
    """Queries and graded judgments from category, brand and attribute vocabulary (see above)."""
    by_category: dict[str, list[ProductDocument]] = defaultdict(list)
    for document in products:
        if document.category and document.category_names:
            by_category[document.category].append(document)
    leaves = sorted(category for category, members in by_category.items() if len(members) >= MIN_CATEGORY_PRODUCTS)
    rng = random.Random(seed)
    candidates: list[tuple[str, list[tuple[ProductDocument, int]]]] = []
    for category in leaves:
        members = by_category[category]
        parent = category.rsplit("/", 1)[0] if "/" in category else None
        siblings = [d for other, docs in by_category.items() if other != category and parent
                    and other.rsplit("/", 1)[0] == parent for d in docs]
        name = _leaf_value(members[0])
        candidates.append((name, [(d, 2) for d in members] + [(d, 1) for d in siblings]))
        brand = rng.choice(sorted({d.brand for d in members if d.brand}) or [None])
        if brand:
            candidates.append((f"{brand.lower()} {name}", [(d, 3 if d.brand == brand else 1) for d in members]))
        values = sorted({value for d in members for value in _attribute_values(d)})
        if values:
            value = rng.choice(values)
            candidates.append((f"{value} {name}", [(d, 3 if value in _attribute_values(d) else 1) for d in members]))
    chosen = rng.sample(candidates, min(max_queries, len(candidates)))
    queries = [{"id": f"q{number}", "text": query} for number, (query, _) in enumerate(chosen)]
    judgments = [{"query_id": f"q{number}", "product_id": d.id, "grade": grade}
                 for number, (_, graded) in enumerate(chosen) for d, grade in graded]
    return queries, judgments


def export_structure_set(connection: Connection, directory: Path, max_queries: int, seed: int = 0
                         ) -> ExportSummary:
    products = list(browsable_documents(connection, load_categories(connection)))
    queries, judgments = structure_set(products, max_queries, seed)
    return _write_set(directory, products, queries, judgments)


_HUMAN = "coalesce(context->>'device', '') <> 'bot'"
_SEARCHES = f"""
SELECT event_id::text AS id, session_id, user_id::text AS user_id, query, occurred_at, seq
FROM shopper_events WHERE event_type = 'search' AND query IS NOT NULL AND {_HUMAN}
"""
_CUTOFF = f"""
SELECT percentile_disc(1 - :share) WITHIN GROUP (ORDER BY occurred_at)
FROM shopper_events WHERE event_type = 'search' AND query IS NOT NULL AND {_HUMAN}
"""
_GRADE = "CASE e.event_type WHEN 'purchase' THEN 3 WHEN 'add_to_cart' THEN 2 ELSE 1 END"
_SESSION_JUDGMENTS = f"""
WITH searches AS (
    SELECT s.*, lead(s.occurred_at) OVER (PARTITION BY s.session_id ORDER BY s.occurred_at, s.seq) AS next_at
    FROM ({_SEARCHES}) AS s
), chosen AS (
    SELECT * FROM searches WHERE occurred_at >= :cutoff ORDER BY md5(id || :seed) LIMIT :max_queries
)
SELECT c.id, c.query, c.user_id, e.product_id::text AS product_id, max({_GRADE}) AS grade
FROM chosen AS c
JOIN shopper_events AS e ON e.session_id = c.session_id AND e.product_id IS NOT NULL
     AND e.event_type IN ('click', 'view', 'add_to_cart', 'purchase')
     AND (e.occurred_at, e.seq) > (c.occurred_at, c.seq) AND (c.next_at IS NULL OR e.occurred_at < c.next_at)
GROUP BY c.id, c.query, c.user_id, e.product_id
"""
_HISTORY = """
SELECT user_id::text AS user_id, product_id::text AS product_id, event_type
FROM shopper_events
WHERE user_id IS NOT NULL AND product_id IS NOT NULL AND event_type = ANY(:types) AND occurred_at < :cutoff
"""


def export_session_set(connection: Connection, directory: Path, max_queries: int, test_share: float = 0.2,
                       seed: int = 0) -> ExportSummary:
    products = list(browsable_documents(connection, load_categories(connection)))
    cutoff = connection.execute(text(_CUTOFF), {"share": test_share}).scalar()
    if cutoff is None:
        return _write_set(directory, products, [], [], [])
    rows = connection.execute(text(_SESSION_JUDGMENTS), {
        "cutoff": cutoff, "max_queries": max_queries, "seed": str(seed)}).mappings().all()
    queries = {row["id"]: {"id": row["id"], "text": row["query"], "user": row["user_id"] or ""} for row in rows}
    judgments = [{"query_id": row["id"], "product_id": row["product_id"], "grade": row["grade"]} for row in rows]
    weights: dict[tuple[str, str], float] = defaultdict(float)
    for row in connection.execute(text(_HISTORY), {"types": list(INTERACTION_WEIGHTS), "cutoff": cutoff}):
        weights[(row.user_id, row.product_id)] += INTERACTION_WEIGHTS[row.event_type]
    interactions = [{"user": user, "product_id": product_id, "weight": weight}
                    for (user, product_id), weight in sorted(weights.items())]
    return _write_set(directory, products, list(queries.values()), judgments, interactions)
