"""Popular and trending products, ranked ahead of time so a fallback costs no catalogue scan.

`Trending` is a decayed count of shopper interactions (half-life `half_life_hours`), kept as
sum(weight * 2^((t - t0) / half-life)) from a fixed reference t0: every score shares the same
decay factor, so they rank correctly without ever being decayed, and only the reference is moved
when the numbers grow large.

`PopularityRanking` is rebuilt in the background every few seconds from the catalogue columns:
every browsable in-stock product ordered by (trending, all-time popularity), once overall and once
grouped by category and by store, so "popular in <category>" is a slice of a precomputed order.
A request only checks its own rules (store, exclusions, current stock) on the head of a slice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serving.search.columns import ColumnsView

# Trending scores are rebased before 2^exponent could overflow float64 (max ~2^1023).
_REBASE_EXPONENT = 900.0
_EMPTY = np.empty(0, dtype=np.int64)

Passes = Callable[[np.ndarray], np.ndarray]


class Trending:
    def __init__(self, half_life_hours: float = 24.0) -> None:
        self.half_life = half_life_hours * 3600.0
        self.reference = time.time()
        self._scores = np.zeros(1024, dtype=np.float64)
        self.changes = 0
        self._lock = threading.Lock()

    def add(self, slots: np.ndarray, weights: np.ndarray, at: np.ndarray) -> None:
        """Count interactions (slot, weight, epoch seconds)."""
        if not len(slots):
            return
        with self._lock:
            exponent = (at - self.reference) / self.half_life
            if exponent.max() > _REBASE_EXPONENT:
                shift = float(exponent.max())
                self._scores *= 2.0 ** -shift
                self.reference += shift * self.half_life
                exponent = exponent - shift
            if slots.max() >= len(self._scores):
                grown = np.zeros(max(int(slots.max()) + 1, 2 * len(self._scores)), dtype=np.float64)
                grown[: len(self._scores)] = self._scores
                self._scores = grown
            np.add.at(self._scores, slots, weights * np.exp2(exponent))
            self.changes += 1

    def scores(self, size: int) -> np.ndarray:
        with self._lock:
            scores = self._scores[:size].copy()
        return np.pad(scores, (0, size - len(scores)))

    def since(self) -> float:
        """Epoch seconds before which interactions no longer matter (weight below 1/1024)."""
        return time.time() - 10 * self.half_life


@dataclass(frozen=True)
class GroupOrder:
    """Slots ordered by group code, best first within each group."""

    slots: np.ndarray
    codes: np.ndarray  # the group code of each entry of `slots` (ascending)

    @classmethod
    def of(cls, ranked: np.ndarray, groups: np.ndarray) -> GroupOrder:
        order = np.argsort(groups[ranked], kind="stable")  # stable: keeps the ranking within a group
        return cls(ranked[order], groups[ranked][order])

    def members(self, codes: np.ndarray) -> list[np.ndarray]:
        """Each group's slots, best first."""
        starts = np.searchsorted(self.codes, codes, side="left")
        ends = np.searchsorted(self.codes, codes, side="right")
        return [self.slots[start:end] for start, end in zip(starts, ends, strict=True) if end > start]


@dataclass(frozen=True)
class PopularityRanking:
    size: int
    rank: np.ndarray  # position of each slot in `overall` (len(overall) for the unranked)
    overall: np.ndarray  # browsable, in-stock slots, best first
    trending: np.ndarray  # trending score per slot
    by_category: GroupOrder
    by_tenant: GroupOrder

    @classmethod
    def build(cls, view: ColumnsView, trending: np.ndarray) -> PopularityRanking:
        eligible = np.flatnonzero(view["visible"] & view["in_stock"])
        popularity = view["popularity"][eligible]
        overall = eligible[np.lexsort((-popularity, -trending[eligible]))]
        rank = np.full(view.size, len(overall), dtype=np.int64)
        rank[overall] = np.arange(len(overall))
        return cls(view.size, rank, overall, trending, GroupOrder.of(overall, view["category"]),
                   GroupOrder.of(overall, view["tenant"]))

    @classmethod
    def empty(cls) -> PopularityRanking:
        nothing = GroupOrder(_EMPTY, _EMPTY)
        return cls(0, _EMPTY, _EMPTY, np.empty(0), nothing, nothing)

    def top(self, k: int, passes: Passes, groups: list[np.ndarray] | None = None) -> np.ndarray:
        """The best `k` slots that pass (from `groups`, each best first, or from all)."""
        sources = [self.overall] if groups is None else groups
        if not sources or k <= 0:
            return _EMPTY
        length = max(4 * k, 256)
        while True:
            heads = np.concatenate([source[:length] for source in sources])
            if len(sources) > 1:
                heads = heads[np.argsort(self.rank[heads], kind="stable")]
            kept = heads[passes(heads)]
            exhausted = all(len(source) <= length for source in sources)
            if len(kept) >= k or exhausted:
                return kept[:k]
            length *= 4
