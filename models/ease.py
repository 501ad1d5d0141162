"""EASE (Steck 2019): a closed-form item-item linear model, B = I - P diagMat(1 / diag(P)) with
P = (X'X + lambda I)^-1 and a zero diagonal. One hyper-parameter, no iterations, strong on dense
catalogues; it needs an items x items inverse, so only the `max_items` most popular items take part
(the rest score zero)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import Recommender
from models.data import Interactions


@dataclass
class EASE(Recommender):
    name = "ease"
    l2: float = 500.0
    max_items: int = 12_000
    kept_items: np.ndarray = field(init=False, repr=False)
    weights: np.ndarray = field(init=False, repr=False)
    history: sp.csr_matrix = field(init=False, repr=False)
    n_items: int = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        matrix = train.matrix(weighted=False)
        popularity = np.asarray(matrix.sum(axis=0)).ravel()
        self.kept_items = np.sort(np.argsort(-popularity, kind="stable")[: self.max_items])
        self.n_items = train.n_items
        self.history = matrix[:, self.kept_items].tocsr()
        gram = (self.history.T @ self.history).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        self.weights = (inverse / -np.diag(inverse)).astype(np.float32)
        np.fill_diagonal(self.weights, 0.0)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(users), self.n_items), np.float32)
        scores[:, self.kept_items] = self.history[users] @ self.weights
        return scores
