"""One recommendation list: candidates, rules, re-ranking, diversity, fallbacks, reasons.

1. **Anchors** by context: `pdp` the viewed item; `cart` the given item or the shopper's cart;
   `post_purchase` the given item or their latest purchases; `homepage` their latest interests.
2. **Candidates** (when a model is loaded): the anchors' nearest items by cosine (each anchor a
   FAISS query, one call), plus the shopper's affinity; on the homepage, the nearest items to the
   shopper's query vector: their model vector blended with a session vector (weighted mean of
   the unit vectors of their latest interactions, newer and stronger ones weighing more). Under
   a store or category scope with few enough products, those products are scored exactly
   instead, so a narrow storefront is never left with what a global top-N happened to hold.
3. **Rules**, one vectorised mask over candidate slots: browsable (active product of an active
   store), in stock (both live from the change feed), the requested store and category,
   nothing already bought, nothing the page already shows (anchors, earlier carousels), and on
   the homepage nothing from the session itself.
4. **Re-ranking**: retrieval score scaled to [0, 1] + popularity + rating (the search
   re-ranker's formula), plus conversion and seller rating when the feature store answers.
5. **Diversity**: at most `seller_share` of the list from one store (not applied under a store
   scope) and, on the homepage and after a purchase, `category_share` from one category (similar
   items on a product page or for a cart may all share its category); skipped items come back
   only if the list would otherwise be short.
6. **Fallbacks** fill what is missing, in order: popular in the requested/anchor/session
   categories, popular in the requested or anchor store, then trending overall.
Each item carries the reason it was chosen and the product it was chosen because of."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from cachetools import LRUCache

from serving.config import RecommendationSettings
from serving.recommend.history import History, Interaction
from serving.recommend.model import ServingModel
from serving.recommend.popular import PopularityRanking
from serving.search.columns import Columns, ColumnsView
from serving.search.personalize import (
    MAX_RATING,
    RATING_PRIOR_MEAN,
    Candidates,
    RerankWeights,
    SignalReranker,
)
from transactional.errors import NotFound

_NONE = -1
CATEGORY_CODES_CACHED = 10_000
_EMPTY = np.empty(0, dtype=np.int64)


class Context(StrEnum):
    homepage = "homepage"
    pdp = "pdp"
    cart = "cart"
    post_purchase = "post_purchase"


class Reason(StrEnum):
    viewed = "viewed"
    carted = "carted"
    bought = "bought"
    similar = "similar"
    for_you = "for_you"
    popular_in_category = "popular_in_category"
    popular_in_store = "popular_in_store"
    trending = "trending"
    popular = "popular"


_REASONS = list(Reason)
_EVENT_REASON = {"view": Reason.viewed, "click": Reason.viewed, "add_to_cart": Reason.carted,
                 "purchase": Reason.bought}


@dataclass(frozen=True)
class RecommendationRequest:
    context: Context = Context.homepage
    user_key: str | None = None
    item_id: str | None = None
    k: int = 10
    tenant_id: str | None = None
    category: str | None = None
    exclude: frozenset[str] = frozenset()  # product ids the page already shows


@dataclass(frozen=True)
class Pick:
    slot: int
    score: float
    reason: Reason
    based_on: int | None  # slot of the product behind the reason
    label: str | None = None  # category or store name for popularity reasons


@dataclass(frozen=True)
class _Anchor:
    slot: int
    reason: Reason


@dataclass
class _Scope:
    tenant_code: int | None
    category_codes: np.ndarray | None
    excluded: np.ndarray
    anchors: list[_Anchor] = field(default_factory=list)
    empty: bool = False  # an unknown store or category: nothing can match


@dataclass(frozen=True)
class _Scored:
    slots: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray  # index into _REASONS
    based_on: np.ndarray  # slot, -1 for none

    def __getitem__(self, selection) -> _Scored:
        return _Scored(self.slots[selection], self.scores[selection], self.reasons[selection],
                       self.based_on[selection])


ItemFeatures = dict[str, dict[str, object]]
# Item features of product ids; None when the feature store cannot answer.
FeatureLookup = Callable[[list[str]], ItemFeatures | None]


def _scaled(values: np.ndarray) -> np.ndarray:
    """Values mapped onto [0, 1] (all ones when they do not differ)."""
    low, high = values.min(initial=0.0), values.max(initial=0.0)
    return (values - low) / (high - low) if high > low else np.ones_like(values)


def _feature(features: ItemFeatures, ids: list[str], name: str) -> np.ndarray:
    return np.array([float(value) if (value := features.get(product_id, {}).get(name)) is not None else np.nan
                     for product_id in ids], dtype=np.float64)


class RecommendationEngine:
    def __init__(self, columns: Columns, settings: RecommendationSettings) -> None:
        self.columns = columns
        self.settings = settings
        self.reranker = SignalReranker(RerankWeights(0.0, settings.popularity_weight, settings.rating_weight))
        self._category_codes: LRUCache[tuple[str, int], np.ndarray] = LRUCache(CATEGORY_CODES_CACHED)
        self._lock = threading.Lock()

    # -- what the request is about ----------------------------------------------------------------

    def item_slot(self, product_id: str, field_name: str = "item_id") -> int:
        """The slot of a browsable product; 404 naming `field_name` otherwise."""
        slot = self.columns.slot_of.get(product_id)
        if slot is None or not self.columns.view()["visible"][slot]:
            raise NotFound(f"no product {product_id} in the storefront", field=field_name)
        return slot

    def category_codes(self, path: str) -> np.ndarray:
        key = (path, len(self.columns.categories.values))
        with self._lock:
            codes = self._category_codes.get(key)
        if codes is None:
            codes = self.columns.category_codes((path,))
            with self._lock:
                self._category_codes[key] = codes
        return codes

    def _slots_of(self, product_ids: list[str] | frozenset[str]) -> list[int]:
        return [slot for slot in map(self.columns.slot_of.get, product_ids) if slot is not None]

    def _anchors(self, request: RecommendationRequest, history: History) -> list[_Anchor]:
        limit = self.settings.session_events
        if request.context == Context.pdp:
            return [_Anchor(self.item_slot(request.item_id), Reason.similar)]
        if request.item_id is not None:
            reason = Reason.bought if request.context == Context.post_purchase else (
                Reason.carted if request.context == Context.cart else Reason.similar)
            return [_Anchor(self.item_slot(request.item_id), reason)]
        if request.context == Context.cart:
            return [_Anchor(slot, Reason.carted) for slot in self._slots_of(history.cart()[:limit])]
        if request.context == Context.post_purchase:
            return [_Anchor(slot, Reason.bought) for slot in self._slots_of(history.latest_purchases()[:limit])]
        return []

    def _scope(self, request: RecommendationRequest, history: History) -> _Scope:
        tenant_code = None
        empty = False
        if request.tenant_id is not None:
            tenant_code = self.columns.tenants.lookup(request.tenant_id)
            empty = tenant_code is None
        category_codes = None
        if request.category is not None:
            category_codes = self.category_codes(request.category)
            empty = empty or not len(category_codes)
        anchors = self._anchors(request, history)
        excluded = set(self._slots_of(history.purchased)) | set(self._slots_of(request.exclude))
        if request.context == Context.homepage:  # what they just looked at is not a discovery
            excluded |= set(self._slots_of([event.product_id for event in self._session(history)]))
        else:
            excluded |= {anchor.slot for anchor in anchors}
        return _Scope(tenant_code, category_codes, np.fromiter(excluded, dtype=np.int64, count=len(excluded)),
                      anchors, empty)

    @staticmethod
    def _passes(view: ColumnsView, scope: _Scope, slots: np.ndarray) -> np.ndarray:
        """The business rules, over candidate slots."""
        inside = (slots >= 0) & (slots < view.size)
        safe = np.where(inside, slots, 0)
        passes = inside & view["visible"][safe] & view["in_stock"][safe]
        if scope.tenant_code is not None:
            passes &= view["tenant"][safe] == scope.tenant_code
        if scope.category_codes is not None:
            passes &= np.isin(view["category"][safe], scope.category_codes)
        if len(scope.excluded):
            passes &= ~np.isin(slots, scope.excluded)
        return passes

    # -- personalised candidates ----------------------------------------------------------------

    def _session(self, history: History) -> list[Interaction]:
        return history.interests(self.settings.session_events)

    def _session_vector(self, model: ServingModel, session: list[Interaction]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(unit session vector, the session items' slots, their unit vectors), or None when the
        model knows none of the session's items."""
        pairs = [(slot, event.weight) for event in session
                 if (slot := self.columns.slot_of.get(event.product_id)) is not None]
        if not pairs:
            return None
        slots = np.array([slot for slot, _ in pairs], dtype=np.int64)
        weights = np.array([weight for _, weight in pairs]) * self.settings.session_decay ** np.arange(len(pairs))
        codes = model.codes_of(slots)
        known = codes >= 0
        vectors = model.unit_vectors(codes[known])
        total = weights[known] @ vectors
        norm = float(np.linalg.norm(total))
        return (total / norm, slots[known], vectors) if norm > 0 else None

    def _query_vector(self, model: ServingModel, user_key: str | None, session: np.ndarray | None
                      ) -> np.ndarray | None:
        user = model.user_vector(user_key)
        if user is not None:
            norm = float(np.linalg.norm(user))
            user = user / norm if norm > 0 else None
        if user is None or session is None:
            return user if session is None else session
        weight = self.settings.session_weight
        blended = (1 - weight) * user + weight * session
        return blended / max(float(np.linalg.norm(blended)), 1e-12)

    def _pool(self, model: ServingModel, ranking: PopularityRanking, scope: _Scope, queries: np.ndarray, k: int
              ) -> np.ndarray:
        """Candidate slots: every product of a narrow scope, else the FAISS neighbours of the queries."""
        groups = self._scope_groups(ranking, scope)
        if groups is not None and sum(map(len, groups)) <= self.settings.exact_max:
            return np.concatenate(groups) if groups else _EMPTY
        widen = 1 if groups is None else self.settings.scoped_widen
        slots, _ = model.nearest(queries, self.settings.candidates_per_item * k * widen)
        slots = slots[slots >= 0]
        return slots if len(queries) == 1 else np.unique(slots)  # one query's neighbours are distinct

    @staticmethod
    def _scope_groups(ranking: PopularityRanking, scope: _Scope) -> list[np.ndarray] | None:
        if scope.category_codes is not None:
            return ranking.by_category.members(scope.category_codes)
        if scope.tenant_code is not None:
            return ranking.by_tenant.members(np.array([scope.tenant_code]))
        return None

    def _personalised(self, view: ColumnsView, request: RecommendationRequest, model: ServingModel,
                      history: History, scope: _Scope, ranking: PopularityRanking) -> _Scored | None:
        session = self._session_vector(model, self._session(history))
        query = self._query_vector(model, request.user_key, session[0] if session else None)
        anchor_slots = np.array([anchor.slot for anchor in scope.anchors], dtype=np.int64)
        anchor_codes = model.codes_of(anchor_slots)
        known = anchor_codes >= 0
        if request.context != Context.homepage:
            if not known.any():
                return None  # the anchors are new to the model: popularity around them answers
            anchor_vectors = model.unit_vectors(anchor_codes[known])
            pool = self._pool(model, ranking, scope, anchor_vectors, request.k)
            pool = pool[self._passes(view, scope, pool)]
            codes = model.codes_of(pool)
            pool, codes = pool[codes >= 0], codes[codes >= 0]
            vectors = model.unit_vectors(codes)
            similarity = anchor_vectors @ vectors.T  # anchors x candidates
            best = similarity.argmax(axis=0) if len(pool) else _EMPTY
            scores = similarity.max(axis=0, initial=-1.0) if len(pool) else np.empty(0)
            if query is not None:
                scores = scores + self.settings.affinity_weight * (vectors @ query)
            anchors = [anchor for anchor, is_known in zip(scope.anchors, known, strict=True) if is_known]
            reasons = np.array([_REASONS.index(anchors[i].reason) for i in best], dtype=np.int64)
            based_on = np.array([anchors[i].slot for i in best], dtype=np.int64)
            return _Scored(pool, scores.astype(np.float64), reasons, based_on)
        if query is None:
            return None
        pool = self._pool(model, ranking, scope, query[None, :], request.k)
        pool = pool[self._passes(view, scope, pool)]
        pool, scores = model.exact(query, pool)
        reasons = np.full(len(pool), _REASONS.index(Reason.for_you), dtype=np.int64)
        based_on = np.full(len(pool), _NONE, dtype=np.int64)
        if session is not None and len(pool):
            # "because you viewed X": the session item most like the candidate, when alike enough.
            _, session_slots, session_vectors = session
            similarity = session_vectors @ model.unit_vectors(model.codes_of(pool)).T
            best = similarity.argmax(axis=0)
            attributed = similarity.max(axis=0) >= self.settings.attribution_similarity
            event_reason = {slot: _EVENT_REASON.get(event.event_type, Reason.viewed)
                            for event in reversed(self._session(history))
                            if (slot := self.columns.slot_of.get(event.product_id)) is not None}
            session_reasons = np.array([_REASONS.index(event_reason[slot]) for slot in session_slots])
            reasons = np.where(attributed, session_reasons[best], reasons)
            based_on = np.where(attributed, session_slots[best], based_on)
        return _Scored(pool, scores.astype(np.float64), reasons, based_on)

    # -- ranking ----------------------------------------------------------------------------------

    def _rerank(self, view: ColumnsView, scored: _Scored, features: FeatureLookup | None) -> tuple[_Scored, np.ndarray]:
        """The candidates best first with their final scores: retrieval and in-memory popularity and
        rating for all, then, for the head of that order only, the feature store's signals."""
        slots = scored.slots
        candidates = Candidates(relevance=_scaled(scored.scores), popularity=view["popularity"][slots],
                                rating=view["rating"][slots], rating_count=view["rating_count"][slots])
        scores = self.reranker.scores(candidates, None)
        order = np.argsort(-scores, kind="stable")[: self.settings.feature_window]
        head, scores = scored[order], scores[order]
        ids = self._ids(head.slots)
        found = features(ids) if features is not None else None
        if found:
            scores = self.reranker.scores(self._with_features(candidates, order, found, ids), None)
            conversion = np.nan_to_num(_feature(found, ids, "conversion_rate_30d"))
            seller_rating = np.nan_to_num(_feature(found, ids, "seller_rating_avg"), nan=RATING_PRIOR_MEAN)
            scores = scores + self.settings.conversion_weight * _scaled(conversion) \
                + self.settings.seller_rating_weight * seller_rating / MAX_RATING
            order = np.argsort(-scores, kind="stable")
            head, scores = head[order], scores[order]
        return head, scores

    def _ids(self, slots: np.ndarray) -> list[str]:
        ids = self.columns.ids
        return [ids[slot] for slot in slots.tolist()]

    @staticmethod
    def _with_features(candidates: Candidates, order: np.ndarray, found: ItemFeatures, ids: list[str]) -> Candidates:
        """The head's signals (`ids`), popularity and rating taken from the feature store where it
        has them (stock is not: the catalogue follows the change feed, fresher than a snapshot)."""
        popularity = _feature(found, ids, "popularity_7d")
        rating = _feature(found, ids, "rating_avg")
        rating_count = _feature(found, ids, "rating_count")
        known_rating = ~np.isnan(rating) & ~np.isnan(rating_count)
        return Candidates(
            relevance=candidates.relevance[order],
            popularity=np.nan_to_num(popularity) if not np.isnan(popularity).all() else candidates.popularity[order],
            rating=np.where(known_rating, rating, candidates.rating[order]),
            rating_count=np.where(known_rating, rating_count, candidates.rating_count[order]),
        )

    def _diverse(self, view: ColumnsView, slots: np.ndarray, k: int, scope: _Scope, by_category: bool,
                 listed: list[Pick] = ()) -> np.ndarray:
        """Positions (into ranked `slots`) making the list after `listed`: greedily in rank order,
        skipping a product whose store (unless the list is scoped to one) or category (when
        `by_category`) already fills its share; skipped ones top the list up only if it would
        otherwise be short. A loop over at most the re-ranked head, never the catalogue."""
        store_cap = max(1, int(np.ceil(self.settings.seller_share * k))) if scope.tenant_code is None else k
        category_cap = max(1, int(np.ceil(self.settings.category_share * k))) if by_category else k
        listed_slots = np.array([pick.slot for pick in listed], dtype=np.int64)
        stores = Counter(view["tenant"][listed_slots].tolist())
        categories = Counter(view["category"][listed_slots].tolist())
        wanted = k - len(listed)
        chosen, skipped = [], []
        for position, (store, category) in enumerate(zip(view["tenant"][slots].tolist(),
                                                         view["category"][slots].tolist(), strict=True)):
            if len(chosen) == wanted:
                break
            if stores[store] < store_cap and categories[category] < category_cap:
                chosen.append(position)
                stores[store] += 1
                categories[category] += 1
            else:
                skipped.append(position)
        if len(chosen) < wanted:
            chosen += skipped[: wanted - len(chosen)]
        return np.array(chosen, dtype=np.int64)

    # -- fallbacks --------------------------------------------------------------------------------

    def _category_label(self, slot: int, path: str | None) -> str:
        """The name of the requested category path, or of the product's own category."""
        document = self.columns.documents[slot]
        names = document.category_names
        depth = path.count("/") if path is not None else len(names) - 1
        if 0 <= depth < len(names) and names[depth]:
            return names[depth]
        return (path or document.category or "").split("/")[-1]

    def _fallback_groups(self, request: RecommendationRequest, scope: _Scope, history: History
                         ) -> tuple[np.ndarray | None, str | None, int | None]:
        """(category codes, request path, store code) to fall back on, each None when unknown."""
        view = self.columns.view()
        if scope.category_codes is not None:
            categories = scope.category_codes
        else:
            slots = [anchor.slot for anchor in scope.anchors] or self._slots_of(
                [event.product_id for event in self._session(history)])
            codes = view["category"][np.array(slots, dtype=np.int64)] if slots else _EMPTY
            categories = np.array(list(dict.fromkeys(codes[codes >= 0].tolist())), dtype=np.int64) \
                if len(codes) else None
        tenant = scope.tenant_code
        if tenant is None and scope.anchors:
            tenant = int(view["tenant"][scope.anchors[0].slot])
        return (categories if categories is not None and len(categories) else None), request.category, tenant

    def _fallback(self, view: ColumnsView, request: RecommendationRequest, scope: _Scope, history: History,
                  ranking: PopularityRanking, chosen: list[Pick], k: int) -> list[Pick]:
        picks = list(chosen)
        categories, path, tenant = self._fallback_groups(request, scope, history)
        levels: list[tuple[list[np.ndarray] | None, Reason]] = []
        if categories is not None:  # the requested path as one group, else each anchor/session category
            levels += [(ranking.by_category.members(codes), Reason.popular_in_category)
                       for codes in ([categories] if path is not None else categories[:, None])]
        if tenant is not None:
            levels.append((ranking.by_tenant.members(np.array([tenant])), Reason.popular_in_store))
        levels.append((None, Reason.trending))
        for groups, reason in levels:
            if len(picks) >= k:
                break
            taken = np.array([pick.slot for pick in picks], dtype=np.int64)
            need = k - len(picks)

            def passes(slots: np.ndarray, taken: np.ndarray = taken) -> np.ndarray:
                return self._passes(view, scope, slots) & ~np.isin(slots, taken)

            found = ranking.top(need * 3, passes, groups)
            found = found[self._diverse(view, found, k, scope, by_category=False, listed=picks)]
            picks += [self._popular_pick(view, ranking, int(slot), reason, path) for slot in found]
        return picks

    def _popular_pick(self, view: ColumnsView, ranking: PopularityRanking, slot: int, reason: Reason,
                      path: str | None) -> Pick:
        score = float(np.log1p(view["popularity"][slot]))
        if reason == Reason.popular_in_category:
            return Pick(slot, score, reason, None, self._category_label(slot, path))
        if reason == Reason.popular_in_store:
            return Pick(slot, score, reason, None, self.columns.documents[slot].store_name)
        trending = slot < len(ranking.trending) and ranking.trending[slot] > 0
        return Pick(slot, score, Reason.trending if trending else Reason.popular, None)

    # -- the whole list ---------------------------------------------------------------------------

    def popular(self, request: RecommendationRequest, history: History, ranking: PopularityRanking) -> list[Pick]:
        """The fallback chain alone (no model, or the `popular` strategy)."""
        scope = self._scope(request, history)
        if scope.empty:
            return []
        return self._fallback(self.columns.view(), request, scope, history, ranking, [], request.k)

    def recommend(self, request: RecommendationRequest, model: ServingModel, history: History,
                  ranking: PopularityRanking, features: FeatureLookup | None = None) -> list[Pick]:
        view = self.columns.view()
        scope = self._scope(request, history)
        if scope.empty:
            return []
        picks: list[Pick] = []
        scored = self._personalised(view, request, model, history, scope, ranking)
        if scored is not None and len(scored.slots):
            ranked, scores = self._rerank(view, scored, features)
            # Similar items on a product page or for a cart may share its category; elsewhere spread.
            spread = request.context in (Context.homepage, Context.post_purchase)
            positions = self._diverse(view, ranked.slots, request.k, scope, by_category=spread)
            picks = [Pick(int(ranked.slots[p]), float(scores[p]), _REASONS[ranked.reasons[p]],
                          int(ranked.based_on[p]) if ranked.based_on[p] >= 0 else None) for p in positions]
        if len(picks) < request.k:
            picks = self._fallback(view, request, scope, history, ranking, picks, request.k)
        return picks
