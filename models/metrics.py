"""Ranking metrics over a hit matrix, and beyond-accuracy measures over recommendation lists.

`hits[u, p]` is True when the item at position `p` (0-based) of user u's top-K list is relevant;
`relevant[u]` is how many relevant items user u has in total. Every function returns one value per
user; the harness averages them over users."""

from __future__ import annotations

import numpy as np


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k) + 2.0)


def hit_rate(hits: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1 when any relevant item is in the top K."""
    return hits.any(axis=1).astype(float)


def recall(hits: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Share of the user's relevant items found in the top K."""
    return hits.sum(axis=1) / np.maximum(relevant, 1)


def ndcg(hits: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Binary-relevance NDCG: DCG over the ideal DCG of min(relevant, K) hits at the top."""
    k = hits.shape[1]
    discounts = _discounts(k)
    dcg = hits @ discounts
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(relevant, k)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def average_precision(hits: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """AP@K: precision at each hit's position, summed, over min(relevant, K)."""
    k = hits.shape[1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision_at * hits).sum(axis=1) / np.maximum(np.minimum(relevant, k), 1)


RANKING_METRICS = {"hr": hit_rate, "ndcg": ndcg, "recall": recall, "map": average_precision}


def ranking_metrics(hits: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """Mean of every ranking metric over users, named `<metric>@K`."""
    k = hits.shape[1]
    return {f"{name}@{k}": float(metric(hits, relevant).mean()) for name, metric in RANKING_METRICS.items()}


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return len(np.unique(recommended)) / n_items


def novelty(recommended: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information -log2(p) of recommended items, p = share of users who interacted
    (items nobody interacted with count as one user's)."""
    share = np.maximum(popularity[recommended], 1) / n_users
    return float(-np.log2(share).mean())


def popularity_bias(recommended: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    """Average recommendation popularity: mean share of users who interacted with a recommended item."""
    return float((popularity[recommended] / n_users).mean())
