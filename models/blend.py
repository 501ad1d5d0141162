"""A weighted blend of recommenders, with weights fitted on a validation split.

Scores of different models live on different scales (co-occurrence counts, dot products, cosine
similarities), so each model's row is standardised per user before weighting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from models.base import Recommender
from models.data import Interactions
from models.evaluation import Scoring
from models.protocols import Split

WEIGHT_STEPS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


def standardise(scores: np.ndarray) -> np.ndarray:
    """Zero mean and unit spread per row (a constant row becomes zeros)."""
    scores = np.asarray(scores, dtype=np.float32)
    spread = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)


@dataclass
class Blend(Recommender):
    name = "blend"
    members: list[Recommender] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def fit(self, train: Interactions) -> Self:
        for member, weight in zip(self.members, self.weights):
            if weight:
                member.fit(train)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        total = None
        for member, weight in zip(self.members, self.weights):
            if weight:
                part = weight * standardise(member.score(users))
                total = part if total is None else total + part
        return total

    def params(self) -> dict[str, object]:
        return {member.name: weight for member, weight in zip(self.members, self.weights)}


@dataclass
class Precomputed(Recommender):
    """Fixed score rows of some users, so a blend search does not score its members again and again."""

    name = "precomputed"
    users: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))

    def fit(self, train: Interactions) -> Self:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.rows[np.searchsorted(self.users, users)]


def fit_weights(
    fitted: Sequence[Recommender],
    validation: Split,
    scoring: Scoring = Scoring(),
    rounds: int = 2,
    max_users: int = 5000,
) -> tuple[list[float], float]:
    """Blend weights for members already fitted on `validation.train`, by coordinate ascent over
    WEIGHT_STEPS on `scoring.target`, starting from the best single member."""
    validation = validation.with_test_users(max_users, seed=validation.seed)
    users = np.unique(validation.test.frame["user"].to_numpy())
    members = [Precomputed(users, standardise(model.score(users))) for model in fitted]

    def value(weights: list[float]) -> float:
        if not any(weights):
            return -np.inf
        return scoring(Blend(members, weights), validation)[scoring.target]

    singles = [value([float(i == j) for j in range(len(members))]) for i in range(len(members))]
    weights = [float(i == int(np.argmax(singles))) for i in range(len(members))]
    best = max(singles)
    for _ in range(rounds):
        improved = False
        for member in range(len(members)):
            for step in WEIGHT_STEPS:
                candidate = weights.copy()
                candidate[member] = step
                score = value(candidate)
                if score > best + 1e-6:
                    weights, best, improved = candidate, score, True
        if not improved:
            break
    return weights, best
