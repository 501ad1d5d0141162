"""Measuring search quality on any labelled set: nDCG@k of each retrieval mode.

Files (UTF-8; CSV with a header row, or JSON Lines with the same keys; chosen by suffix):
- products: id, title, description, category, brand, price; optional tenant_id, rating_avg,
  rating_count, in_stock. `category` is a path ("fashion/shoes/running" or "Fashion > Shoes").
- queries: id, text, and optionally user (whose interactions personalise that query).
- judgments: query_id, product_id, grade (0 = not relevant, higher = more relevant).
- interactions (optional): user, product_id, weight: the shoppers' history, for profiles and
  popularity. It must predate the queries, or the personalised figure is flattered.

Gain is exponential, (2^grade - 1) / log2(rank + 1), as in Burges et al. (2005), so a grade-3
product counts seven times a grade-1 one; the ideal ranking orders every judged product by grade.
Queries without a relevant product are skipped (their nDCG is undefined)."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.config import SearchSettings
from serving.search.documents import ProductDocument
from serving.search.engine import Retrieval, SearchEngine, SearchRequest
from serving.search.index import Progress, SearchIndex
from serving.search.personalize import InteractionProfiles
from serving.search.vectors import Embedder

RECALL_DEPTH = 100


@dataclass(frozen=True)
class Mode:
    name: str
    retrieval: Retrieval
    rerank: bool = False  # popularity, rating (and affinity when the query has a user)
    with_user: bool = False


MODES = (
    Mode("bm25", Retrieval.lexical),
    Mode("semantic", Retrieval.semantic),
    Mode("hybrid", Retrieval.hybrid),
    Mode("hybrid+rerank", Retrieval.hybrid, rerank=True),
    Mode("hybrid+personalised", Retrieval.hybrid, rerank=True, with_user=True),
)


@dataclass(frozen=True)
class LabelledQuery:
    id: str
    text: str
    user: str | None = None


@dataclass
class LabelledSet:
    products: list[ProductDocument]
    queries: list[LabelledQuery]
    judgments: dict[str, dict[str, float]]  # query id -> product id -> grade
    interactions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # user -> (product, weight)

    def popularity(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for history in self.interactions.values():
            for product_id, weight in history:
                totals[product_id] += weight
        return dict(totals)


# -- files ----------------------------------------------------------------------------------------


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix in (".jsonl", ".ndjson", ".json"):
            yield from (json.loads(line) for line in handle if line.strip())
        else:
            yield from csv.DictReader(handle)


def write_rows(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix in (".jsonl", ".ndjson", ".json"):
            for row in rows:
                handle.write(json.dumps({name: row.get(name) for name in columns}, ensure_ascii=False) + "\n")
                count += 1
        else:
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1
    return count


class FileProblem(ValueError):
    """A labelled-set file that cannot be read, with the place to fix."""


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("0", "false", "no", "")


def product_from_row(row: dict[str, Any]) -> ProductDocument:
    category = (row.get("category") or "").strip()
    names = tuple(part.strip() for part in re.split(r"\s*[/>]\s*", category) if part.strip())
    return ProductDocument(
        id=str(row["id"]), title=str(row["title"]), description=str(row.get("description") or ""),
        brand=(row.get("brand") or None), category="/".join(names).lower() or None, category_names=names,
        tenant_id=str(row.get("tenant_id") or ""), price=float(row.get("price") or 0.0),
        rating_avg=_optional_float(row.get("rating_avg")), rating_count=int(float(row.get("rating_count") or 0)),
        in_stock=_flag(row.get("in_stock", True)),
    )


def _rows(path: Path, build: Callable[[dict[str, Any]], Any]) -> list[Any]:
    built = []
    for line, row in enumerate(read_rows(path), start=2):
        try:
            built.append(build(row))
        except (KeyError, ValueError, TypeError) as exc:
            raise FileProblem(f"{path}: record {line - 1}: {type(exc).__name__}: {exc}") from exc
    return built


def read_labelled_set(products: Path, queries: Path, judgments: Path, interactions: Path | None = None
                      ) -> LabelledSet:
    graded: dict[str, dict[str, float]] = defaultdict(dict)
    for query_id, product_id, grade in _rows(judgments, lambda r: (str(r["query_id"]), str(r["product_id"]),
                                                                   float(r["grade"]))):
        graded[query_id][product_id] = max(grade, graded[query_id].get(product_id, 0.0))
    history: dict[str, list[tuple[str, float]]] = defaultdict(list)
    if interactions is not None:
        for user, product_id, weight in _rows(interactions, lambda r: (str(r["user"]), str(r["product_id"]),
                                                                       float(r.get("weight") or 1.0))):
            history[user].append((product_id, weight))
    return LabelledSet(
        products=_rows(products, product_from_row),
        queries=_rows(queries, lambda r: LabelledQuery(str(r["id"]), str(r["text"]), (r.get("user") or None))),
        judgments=dict(graded), interactions=dict(history),
    )


# -- metrics --------------------------------------------------------------------------------------


def dcg(grades: Sequence[float], k: int) -> float:
    return sum((2.0 ** grade - 1.0) / math.log2(rank + 2) for rank, grade in enumerate(grades[:k]))


def ndcg(ranked: Sequence[str], judged: dict[str, float], k: int) -> float | None:
    ideal = dcg(sorted(judged.values(), reverse=True), k)
    if ideal <= 0:
        return None
    return dcg([judged.get(product_id, 0.0) for product_id in ranked], k) / ideal


def recall(ranked: Sequence[str], judged: dict[str, float], depth: int) -> float | None:
    relevant = {product_id for product_id, grade in judged.items() if grade > 0}
    if not relevant:
        return None
    return len(relevant.intersection(ranked[:depth])) / len(relevant)


@dataclass(frozen=True)
class ModeScore:
    mode: str
    ndcg: float
    recall: float
    zero_results: float  # share of queries answered with nothing
    queries: int


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def labelled_engine(labelled: LabelledSet, embedder: Embedder, settings: SearchSettings,
                    progress: Progress | None = None) -> SearchEngine:
    """A search engine over the set's products, with popularity and profiles from its interactions."""
    index = SearchIndex(embedder)
    index.popularity = labelled.popularity()
    index.load(labelled.products, progress=progress)
    profiles = InteractionProfiles(lambda user: labelled.interactions.get(user, []), index.item_vector)
    return SearchEngine(index, settings, user_vectors=profiles)


def score_modes(engine: SearchEngine, labelled: LabelledSet, k: int = 10, modes: Sequence[Mode] = MODES,
                progress: Progress | None = None) -> list[ModeScore]:
    """nDCG@k, recall@100 and the zero-result share of each mode over the judged queries."""
    queries = [query for query in labelled.queries if query.id in labelled.judgments]
    scores = []
    for mode in modes:
        ndcgs, recalls, empty = [], [], 0
        for query in queries:
            result = engine.search(SearchRequest(
                query=query.text, limit=max(k, RECALL_DEPTH), retrieval=mode.retrieval, personalise=mode.rerank,
                user_id=query.user if mode.with_user else None, facets=False,
            ))
            ranked = [hit.document.id for hit in result.hits]
            empty += not ranked
            judged = labelled.judgments[query.id]
            if (value := ndcg(ranked, judged, k)) is not None:
                ndcgs.append(value)
                recalls.append(recall(ranked, judged, RECALL_DEPTH) or 0.0)
            if progress:
                progress(1)
        scores.append(ModeScore(mode.name, _mean(ndcgs), _mean(recalls), empty / len(queries) if queries else 0.0,
                                len(ndcgs)))
    return scores
