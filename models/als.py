"""Implicit-feedback matrix factorisation (Hu, Koren and Volinsky 2008) with the `implicit` package.

The confidence of a user-item pair grows with its summed event weights (a purchase counts more than a
view, see `models.data.DEFAULT_EVENT_WEIGHTS`) times `alpha`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from models.base import Recommender
from models.data import Interactions


@dataclass
class ImplicitALS(Recommender):
    name = "als"
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    random_state: int = 0
    num_threads: int = 0
    user_factors: np.ndarray = field(init=False, repr=False)
    item_factors: np.ndarray = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        # implicit runs its own threads; BLAS threads on top of them only contend.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            model.fit(train.matrix(), show_progress=False)
        self.user_factors, self.item_factors = model.user_factors, model.item_factors
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T

    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users]
