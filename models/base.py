"""What every recommender offers: hyper-parameters as dataclass fields, `fit` on an interaction log,
and `score` giving one row of item scores per user (higher is better)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar, Self

import numpy as np

from models.data import Interactions


@dataclass
class Recommender(ABC):
    name: ClassVar[str]

    @abstractmethod
    def fit(self, train: Interactions) -> Self: ...

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 scores; the harness masks items the user already has."""

    def params(self) -> dict[str, object]:
        """The hyper-parameters (the dataclass init fields)."""
        return {field.name: getattr(self, field.name) for field in fields(self) if field.init}

    def item_vectors(self) -> np.ndarray | None:
        """Item embeddings for nearest-neighbour retrieval, when the model has them."""
        return None

    def user_vectors(self, users: np.ndarray) -> np.ndarray | None:
        """Query vectors whose inner product with `item_vectors()` ranks like `score`, when there are such."""
        return None
