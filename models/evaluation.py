"""The evaluation harness: rank for every test user, compare with the held-out items.

Full ranking scores the whole catalogue; sampled ranking places each held-out item among
`negatives` random items the user never interacted with (fixed seed), the protocol of NCF-style
papers. In both, items the user already has in training are never recommended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from models.base import Recommender
from models.data import Interactions
from models.metrics import RANKING_METRICS, coverage, novelty, popularity_bias, ranking_metrics
from models.protocols import Split

Ranking = Literal["full", "sampled"]
USER_BATCH = 512


def masked_scores(model: Recommender, users: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Scores with the user's training items pushed to the bottom."""
    scores = np.array(model.score(users), dtype=np.float32)
    rows = seen[users]
    scores[np.repeat(np.arange(len(users)), np.diff(rows.indptr)), rows.indices] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, best first (ties by lower index)."""
    k = min(k, scores.shape[1])
    candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    return np.take_along_axis(candidates, order, axis=1)


def recommend(model: Recommender, train: Interactions, users: np.ndarray, k: int) -> np.ndarray:
    """Top-k item codes for each user, excluding the user's training items."""
    seen = train.matrix(weighted=False)
    return np.vstack(
        [
            top_k(masked_scores(model, batch, seen), k)
            for batch in np.array_split(users, max(1, -(-len(users) // USER_BATCH)))
        ]
    )


def _test_users(test: Interactions) -> np.ndarray:
    return np.unique(test.frame["user"].to_numpy())


def evaluate_full(model: Recommender, split: Split, k: int = 10) -> dict[str, float]:
    """Full-ranking accuracy at k plus catalogue coverage, novelty and popularity bias of the lists."""
    users = _test_users(split.test)
    relevant_matrix = split.test.matrix(weighted=False)
    recommended = recommend(model, split.train, users, k)
    hits = np.asarray(relevant_matrix[users[:, None], recommended].todense(), dtype=bool)
    relevant = np.diff(relevant_matrix.indptr)[users]
    popularity = split.train.item_popularity()
    n_users = len(split.train.users())
    return {
        **ranking_metrics(hits, relevant),
        f"coverage@{k}": coverage(recommended, split.train.n_items),
        f"novelty@{k}": novelty(recommended, popularity, n_users),
        f"popularity_bias@{k}": popularity_bias(recommended, popularity, n_users),
    }


def sample_negatives(split: Split, negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each test pair: its user, its item and `negatives` items the user has not interacted with,
    drawn uniformly with `seed` (so every model is ranked against the same candidates)."""
    rng = np.random.default_rng(seed)
    interacted = (split.train.matrix(weighted=False) + split.test.matrix(weighted=False)).tocsr()
    order = np.lexsort((split.test.frame["item"].to_numpy(), split.test.frame["user"].to_numpy()))
    users = split.test.frame["user"].to_numpy()[order]
    positives = split.test.frame["item"].to_numpy()[order]
    drawn = np.empty((len(users), negatives), dtype=np.int64)
    n_items = split.train.n_items
    for row, user in enumerate(users):
        excluded = interacted.indices[interacted.indptr[user] : interacted.indptr[user + 1]]
        if n_items - len(excluded) < negatives:
            pool = np.setdiff1d(np.arange(n_items), excluded, assume_unique=True)
            drawn[row] = rng.choice(pool, size=negatives, replace=True)
            continue
        # Distinct items from the whole catalogue, minus the user's: in random order, the first
        # `negatives` survivors are a uniform sample of the items the user never touched.
        candidates = rng.choice(n_items, size=negatives + len(excluded), replace=False)
        drawn[row] = candidates[~np.isin(candidates, excluded)][:negatives]
    return users, positives, drawn


def evaluate_sampled(
    model: Recommender, split: Split, k: int = 10, negatives: int = 100, seed: int = 0
) -> dict[str, float]:
    """Sampled ranking: each held-out item against `negatives` random ones; per-user means, then the mean
    over users. Ties with negatives count half, so a constant model ranks the positive in the middle."""
    users, positives, drawn = sample_negatives(split, negatives, seed)
    ranks = np.empty(len(users), dtype=np.int64)
    for start in range(0, len(users), USER_BATCH):
        batch = slice(start, start + USER_BATCH)
        scores = np.asarray(model.score(users[batch]), dtype=np.float32)
        rows = np.arange(scores.shape[0])
        positive = scores[rows, positives[batch]][:, None]
        negative = scores[rows[:, None], drawn[batch]]
        ranks[batch] = (negative > positive).sum(axis=1) + (negative == positive).sum(axis=1) // 2
    hits = ranks[:, None] == np.arange(k)[None, :]
    per_case = ranking_metrics_per_case(hits)
    _, case_user = np.unique(users, return_inverse=True)
    counts = np.bincount(case_user)
    return {
        name: float((np.bincount(case_user, weights=values) / counts).mean())
        for name, values in per_case.items()
    }


def ranking_metrics_per_case(hits: np.ndarray) -> dict[str, np.ndarray]:
    ones = np.ones(len(hits), dtype=np.int64)
    return {f"{name}@{hits.shape[1]}": metric(hits, ones) for name, metric in RANKING_METRICS.items()}


@dataclass(frozen=True)
class Scoring:
    """How models are scored: everywhere one evaluation tunes, blends and tests, it scores alike.
    `target` (`metric`@k) is what tuning and blend weights maximise."""

    k: int = 10
    ranking: Ranking = "full"
    negatives: int = 100
    seed: int = 0
    metric: str = "ndcg"

    @property
    def target(self) -> str:
        return f"{self.metric}@{self.k}"

    def __call__(self, model: Recommender, split: Split) -> dict[str, float]:
        return evaluate(model, split, self.k, self.ranking, self.negatives, self.seed)


def evaluate(
    model: Recommender,
    split: Split,
    k: int = 10,
    ranking: Ranking = "full",
    negatives: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    if ranking == "full":
        return evaluate_full(model, split, k)
    return evaluate_sampled(model, split, k, negatives, seed)
