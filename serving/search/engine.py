"""Answering a search: retrieve, fuse, re-rank, facet, sort and page.

1. The filters become a slot mask over the columns (visible products only).
2. Lexical BM25 (tantivy) and semantic nearest neighbours (FAISS) each retrieve their best
   matches under the mask; the semantic list stops at a cosine floor.
3. The two rankings are fused by reciprocal rank fusion (`serving.search.fusion`).
4. A `Personalizer` re-scores the fused candidates with the shopper's affinity, popularity and
   rating (`serving.search.personalize`).
5. Facets count the candidates; the page is the next `limit` after the cursor in the sort order.

A query with no result is retried relaxed: any word instead of every word, one more typo allowed,
a lower similarity floor; then, if filters were given, without them. The response says which
relaxation produced the results. A search without words lists the filtered catalog (a category
page), ranked by popularity, rating and affinity."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from cachetools import LRUCache

from serving.config import SearchSettings
from serving.search.columns import ColumnsView, FacetValue, SearchFilters
from serving.search.cursor import Position, decode_cursor, encode_cursor, fingerprint
from serving.search.documents import ProductDocument, normalise_text
from serving.search.fusion import reciprocal_rank_fusion
from serving.search.index import SearchIndex
from serving.search.lexical import QueryWords
from serving.search.personalize import (
    Candidates,
    Personalizer,
    RerankWeights,
    SignalReranker,
    UserVectors,
    bayesian_rating,
)

QUERY_VECTOR_CACHE = 10_000
COMPLETION_CANDIDATES = 200


class SortOrder(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    rating = "rating"
    newest = "newest"


class Retrieval(StrEnum):
    lexical = "lexical"
    semantic = "semantic"
    hybrid = "hybrid"


class Relaxation(StrEnum):
    any_words = "any_words"  # OR instead of AND, one more typo, lower similarity floor
    dropped_filters = "dropped_filters"


@dataclass(frozen=True)
class SearchRequest:
    query: str = ""
    filters: SearchFilters = field(default_factory=SearchFilters)
    sort: SortOrder = SortOrder.relevance
    limit: int = 20
    cursor: str | None = None
    user_id: str | None = None
    retrieval: Retrieval = Retrieval.hybrid
    personalise: bool = True
    facets: bool = True


@dataclass(frozen=True)
class SearchHit:
    document: ProductDocument
    score: float
    matched_by: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    total: int
    facets: dict[str, list[FacetValue]]
    next_cursor: str | None
    relaxations: list[Relaxation]
    dropped_filters: list[str]


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # "query": a popular search; "product": a product title
    product_id: str | None = None


@dataclass(frozen=True)
class _Retrieved:
    slots: np.ndarray
    relevance: np.ndarray
    lexical: np.ndarray  # bool per candidate: found by the lexical retriever
    semantic: np.ndarray


@dataclass(frozen=True)
class _Attempt:
    filters: SearchFilters
    relaxations: tuple[Relaxation, ...] = ()

    @property
    def relaxed(self) -> bool:
        return Relaxation.any_words in self.relaxations


class SearchEngine:
    def __init__(self, index: SearchIndex, settings: SearchSettings, personalizer: Personalizer | None = None,
                 user_vectors: UserVectors | None = None) -> None:
        self.index = index
        self.settings = settings
        self.personalizer = personalizer or SignalReranker(RerankWeights(
            settings.affinity_weight, settings.popularity_weight, settings.rating_weight))
        self.user_vectors = user_vectors
        self._query_vectors: LRUCache[str, np.ndarray] = LRUCache(QUERY_VECTOR_CACHE)
        self._cache_lock = threading.Lock()

    # -- retrieval ------------------------------------------------------------------------------

    def query_vector(self, text: str) -> np.ndarray:
        key = normalise_text(text)
        with self._cache_lock:
            vector = self._query_vectors.get(key)
        if vector is None:
            vector = self.index.embedder.embed([key])[0]
            with self._cache_lock:
                self._query_vectors[key] = vector
        return vector

    def _retrieve(self, view: ColumnsView, words: QueryWords, request: SearchRequest, attempt: _Attempt
                  ) -> _Retrieved:
        mask = self.index.columns.mask(view, attempt.filters)
        if not words:
            slots = np.flatnonzero(mask)
            none = np.zeros(len(slots), dtype=bool)
            return _Retrieved(slots, np.zeros(len(slots)), none, none)
        rankings, weights, scores = [], [], []
        if request.retrieval != Retrieval.semantic:
            hits = self.index.lexical.search(words, attempt.filters, self.settings.lexical_window, attempt.relaxed)
            keep = hits.slots < view.size
            keep[keep] = mask[hits.slots[keep]]
            rankings.append(hits.slots[keep])
            scores.append(hits.scores[keep])
            weights.append(self.settings.lexical_weight)
        if request.retrieval != Retrieval.lexical:
            floor = self.settings.relaxed_min_similarity if attempt.relaxed else self.settings.min_similarity
            hits = self.index.vectors.search(self.query_vector(request.query), mask, self.settings.semantic_window,
                                             floor)
            rankings.append(hits.slots)
            scores.append(hits.scores)
            weights.append(self.settings.semantic_weight)
        if len(rankings) == 1:
            slots, relevance = rankings[0], scores[0].astype(np.float64)
        else:
            slots, relevance = reciprocal_rank_fusion(rankings, weights)
        found = [np.isin(slots, ranking) for ranking in rankings]
        lexical = found[0] if request.retrieval != Retrieval.semantic else np.zeros(len(slots), dtype=bool)
        semantic = found[-1] if request.retrieval != Retrieval.lexical else np.zeros(len(slots), dtype=bool)
        return _Retrieved(slots, relevance, lexical, semantic)

    def _attempts(self, request: SearchRequest, words: QueryWords) -> list[_Attempt]:
        attempts = [_Attempt(request.filters)]
        if words:
            attempts.append(_Attempt(request.filters, (Relaxation.any_words,)))
            if request.filters.active():
                attempts.append(_Attempt(SearchFilters(), (Relaxation.any_words, Relaxation.dropped_filters)))
        return attempts

    # -- ranking --------------------------------------------------------------------------------

    def _scores(self, view: ColumnsView, retrieved: _Retrieved, request: SearchRequest) -> np.ndarray:
        if not request.personalise:
            return retrieved.relevance
        slots = retrieved.slots
        user_vector = (self.user_vectors.vector(request.user_id)
                       if self.user_vectors is not None and request.user_id else None)
        candidates = Candidates(
            relevance=retrieved.relevance, popularity=view["popularity"][slots], rating=view["rating"][slots],
            rating_count=view["rating_count"][slots],
            item_vectors=self.index.vectors.vectors(slots) if user_vector is not None else None,
        )
        return self.personalizer.scores(candidates, user_vector)

    @staticmethod
    def _sort_keys(view: ColumnsView, slots: np.ndarray, scores: np.ndarray, sort: SortOrder) -> np.ndarray:
        """Ascending keys: the order of `sort`, best first."""
        if sort == SortOrder.price_asc:
            return view["price"][slots].astype(np.float64)
        if sort == SortOrder.price_desc:
            return -view["price"][slots].astype(np.float64)
        if sort == SortOrder.rating:  # best Bayesian rating first, unrated products last
            counts = view["rating_count"][slots]
            return np.where(counts > 0, -bayesian_rating(view["rating"][slots].astype(np.float64), counts), np.inf)
        if sort == SortOrder.newest:
            return -view["created"][slots]
        return -np.asarray(scores, dtype=np.float64)

    @staticmethod
    def _page(keys: np.ndarray, id_keys: np.ndarray, after: Position | None, limit: int) -> np.ndarray:
        """Positions (into keys) of the next `limit` + 1 results in (key, id_key) order."""
        candidates = np.arange(len(keys))
        if after is not None:
            later = (keys > after.key) | ((keys == after.key) & (id_keys > after.id_key))
            candidates = candidates[later]
        if len(candidates) > limit + 1:
            # Only keys up to the (limit+1)-th smallest can be on the page: sort just those.
            threshold = np.partition(keys[candidates], limit)[limit]
            candidates = candidates[keys[candidates] <= threshold]
        order = np.lexsort((id_keys[candidates], keys[candidates]))
        return candidates[order][: limit + 1]

    # -- the whole search -----------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResult:
        search_fingerprint = fingerprint(normalise_text(request.query), request.filters, request.sort,
                                         request.user_id, request.retrieval, request.personalise)
        after = decode_cursor(request.cursor, search_fingerprint) if request.cursor else None
        view = self.index.columns.view()
        words = self.index.lexical.analyse(request.query)
        for attempt in self._attempts(request, words):
            retrieved = self._retrieve(view, words, request, attempt)
            if len(retrieved.slots):
                break
        slots = retrieved.slots
        scores = self._scores(view, retrieved, request)
        keys = self._sort_keys(view, slots, scores, request.sort)
        id_keys = view["id_key"][slots]
        page = self._page(keys, id_keys, after, request.limit)
        next_cursor = None
        if len(page) > request.limit:
            page = page[: request.limit]
            last = page[-1]
            next_cursor = encode_cursor(search_fingerprint, Position(float(keys[last]), int(id_keys[last])))
        documents = self.index.columns.documents
        retrievers = (("lexical", retrieved.lexical), ("semantic", retrieved.semantic))
        hits = [SearchHit(documents[slots[position]], float(scores[position]),
                          tuple(name for name, found in retrievers if found[position]))
                for position in page]
        facets = self.index.columns.facets(view, slots, self.settings.facet_size) if request.facets else {}
        dropped = request.filters.active() if Relaxation.dropped_filters in attempt.relaxations else []
        return SearchResult(hits, len(slots), facets, next_cursor, list(attempt.relaxations), dropped)

    # -- autocompletion -------------------------------------------------------------------------

    def suggest(self, prefix: str, limit: int) -> list[Suggestion]:
        """Popular queries starting with `prefix`, then titles of the most popular products whose
        title has the typed words in order (the last one as a prefix)."""
        suggestions = [Suggestion(query, "query") for query, _ in self.index.queries.complete(prefix, limit)]
        seen = {suggestion.text for suggestion in suggestions}
        view = self.index.columns.view()
        slots = self.index.lexical.complete(self.index.lexical.analyse(prefix), COMPLETION_CANDIDATES)
        slots = slots[slots < view.size]
        slots = slots[view["visible"][slots]]
        for slot in slots[np.argsort(-view["popularity"][slots], kind="stable")]:
            if len(suggestions) >= limit:
                break
            document = self.index.columns.documents[slot]
            if normalise_text(document.title) not in seen:
                seen.add(normalise_text(document.title))
                suggestions.append(Suggestion(document.title, "product", document.id))
        return suggestions
