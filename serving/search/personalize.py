"""Re-ranking the fused candidates for the shopper: relevance first, then the shopper's affinity
(user vector . item vector), popularity and rating.

The pieces are interfaces so recommendation models can plug in without touching search:
- `UserVectors` gives a shopper's vector (None for anonymous or unknown shoppers);
- `ItemVectors` gives item vectors in the same space, for candidate slots;
- `Personalizer` turns the candidates' signals into final scores.
Until a trained model is wired in, `InteractionProfiles` makes a content-based user vector: the
weighted mean of the MiniLM vectors of the products the shopper recently viewed, carted or bought
(so affinity means "like what you looked at"), and `SignalReranker` is a linear blend whose
weights `marketlake evaluate-search` measures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from cachetools import TTLCache

RATING_PRIOR_COUNT = 5.0
RATING_PRIOR_MEAN = 3.5
MAX_RATING = 5.0


@dataclass(frozen=True)
class Candidates:
    """Signals of the candidates being ranked, one entry per candidate."""

    relevance: np.ndarray  # fused retrieval score, higher is better (zeros when browsing)
    popularity: np.ndarray  # weighted recent interactions
    rating: np.ndarray  # average rating, 0 when unrated
    rating_count: np.ndarray
    item_vectors: np.ndarray | None = None  # rows in the user vector's space


class Personalizer(Protocol):
    def scores(self, candidates: Candidates, user_vector: np.ndarray | None) -> np.ndarray: ...


class UserVectors(Protocol):
    def vector(self, user_id: str) -> np.ndarray | None: ...


class ItemVectors(Protocol):
    def vectors(self, slots: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RerankWeights:
    affinity: float = 0.3
    popularity: float = 0.2
    rating: float = 0.05


def bayesian_rating(rating: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The average shrunk towards a prior, so one 5-star review does not beat a hundred 4.8s."""
    return (RATING_PRIOR_MEAN * RATING_PRIOR_COUNT + rating * count) / (RATING_PRIOR_COUNT + count)


class SignalReranker:
    """relevance/max(relevance) + w_a * cos(user, item) + w_p * popularity' + w_r * rating', where
    popularity' is log-scaled to [0, 1] within the candidates and rating' is the Bayesian rating
    over 5. Without a user vector the affinity term is 0 for every candidate."""

    def __init__(self, weights: RerankWeights = RerankWeights()) -> None:
        self.weights = weights

    def scores(self, candidates: Candidates, user_vector: np.ndarray | None) -> np.ndarray:
        relevance = candidates.relevance.astype(np.float64)
        top = relevance.max(initial=0.0)
        score = relevance / top if top > 0 else np.zeros_like(relevance)
        popularity = np.log1p(np.maximum(candidates.popularity, 0.0))
        if popularity.max(initial=0.0) > 0:
            score += self.weights.popularity * popularity / popularity.max()
        score += self.weights.rating * bayesian_rating(candidates.rating, candidates.rating_count) / MAX_RATING
        if user_vector is not None and candidates.item_vectors is not None:
            score += self.weights.affinity * (candidates.item_vectors @ user_vector)
        return score


Interactions = Callable[[str], list[tuple[str, float]]]


class InteractionProfiles:
    """User vector = unit-length weighted mean of the item vectors of the shopper's recent
    interactions; cached for `ttl_seconds` (a profile drifts slowly, a search is frequent)."""

    def __init__(self, interactions: Interactions, item_vector: Callable[[str], np.ndarray | None],
                 ttl_seconds: float = 60.0, max_users: int = 100_000) -> None:
        self._interactions = interactions
        self._item_vector = item_vector
        self._cache: TTLCache[str, np.ndarray | None] = TTLCache(max_users, ttl_seconds)

    def vector(self, user_id: str) -> np.ndarray | None:
        if user_id in self._cache:
            return self._cache[user_id]
        total = None
        for product_id, weight in self._interactions(user_id):
            item = self._item_vector(product_id)
            if item is not None:
                total = weight * item if total is None else total + weight * item
        norm = float(np.linalg.norm(total)) if total is not None else 0.0
        vector = (total / norm).astype(np.float32) if norm > 0 else None
        self._cache[user_id] = vector
        return vector

