"""Popularity baselines: the same list for everyone, within the user's categories or sellers, or with
recent interactions counting more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp

from models.base import Recommender
from models.data import Interactions


@dataclass
class ItemPopularity(Recommender):
    """Items ranked by how many users interacted with them (Gorse's and LibRec's ItemPop)."""

    name = "item_pop"
    counts: np.ndarray = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        self.counts = train.item_popularity().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts))).copy()


@dataclass
class DecayedPopularity(Recommender):
    """Popularity where an interaction's weight halves every `half_life_days` before the latest one."""

    name = "decayed_pop"
    half_life_days: float = 14.0
    counts: np.ndarray = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        timestamps = train.frame["timestamp"].to_numpy(np.float64)
        age_days = (timestamps.max() - timestamps) / 86400.0
        decay = np.exp2(-age_days / self.half_life_days) * train.frame["weight"].to_numpy()
        self.counts = np.bincount(
            train.frame["item"].to_numpy(), weights=decay, minlength=train.n_items
        ).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts))).copy()


@dataclass
class GroupPopularity(Recommender):
    """Popular items of the groups (categories or sellers) a user interacts with.

    score(u, i) = (share of u's interactions in i's group + prior) x popularity(i): the user's groups
    come first, and `prior` lets very popular items of other groups still appear. Items without a
    known group, or logs without groups, fall back to plain popularity."""

    name = "group_pop"
    group: Literal["category", "tenant"] = "category"
    prior: float = 0.05
    affinity: sp.csr_matrix = field(init=False, repr=False)
    item_group: np.ndarray = field(init=False, repr=False)
    counts: np.ndarray = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        groups = train.item_category if self.group == "category" else train.item_tenant
        self.item_group = np.zeros(train.n_items, np.int32) if groups is None else groups.copy()
        unknown = self.item_group < 0
        self.item_group[unknown] = self.item_group.max(initial=-1) + 1
        n_groups = int(self.item_group.max()) + 1
        # Items without a known group share a pseudo-group whose affinity says nothing about taste.
        informative = np.ones(n_groups, np.float32)
        if unknown.any():
            informative[-1] = 0.0
        item_to_group = sp.csr_matrix(
            (np.ones(train.n_items, np.float32), (np.arange(train.n_items), self.item_group)),
            shape=(train.n_items, n_groups),
        )
        per_group = train.matrix(weighted=False) @ item_to_group
        totals = np.asarray(per_group.sum(axis=1)).ravel()
        self.affinity = (sp.diags(1.0 / np.maximum(totals, 1)) @ per_group @ sp.diags(informative)).tocsr()
        self.counts = train.item_popularity().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        user_affinity = self.affinity[users].toarray()
        return ((user_affinity[:, self.item_group] + self.prior) * self.counts).astype(np.float32)


@dataclass
class CategoryPopularity(GroupPopularity):
    name = "category_pop"
    group: Literal["category", "tenant"] = "category"


@dataclass
class TenantPopularity(GroupPopularity):
    name = "tenant_pop"
    group: Literal["category", "tenant"] = "tenant"


@dataclass
class TemporalPopularity(Recommender):
    """What was popular while the user was active: each interaction of an item counts for a user by a
    Gaussian kernel (`bandwidth_days`) of the time between it and the user's own interactions.

    Catalogues change (new releases, seasons, items out of stock), so items popular when the user was
    around are likelier than items popular at some other time. Time is binned (at most `max_bins`)."""

    name = "temporal_pop"
    bandwidth_days: float = 7.0
    max_bins: int = 512
    user_bins: sp.csr_matrix = field(init=False, repr=False)
    bin_items: sp.csr_matrix = field(init=False, repr=False)
    kernel: np.ndarray = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        timestamps = train.frame["timestamp"].to_numpy(np.float64)
        start, span = timestamps.min(), max(np.ptp(timestamps), 1.0)
        bin_seconds = max(self.bandwidth_days * 86400.0 / 4, span / self.max_bins)
        n_bins = int(span // bin_seconds) + 1
        bins = ((timestamps - start) // bin_seconds).astype(np.int64)
        ones = np.ones(len(bins), np.float32)
        self.bin_items = sp.csr_matrix(
            (ones, (bins, train.frame["item"].to_numpy())), shape=(n_bins, train.n_items)
        )
        users = sp.csr_matrix((ones, (train.frame["user"].to_numpy(), bins)), shape=(train.n_users, n_bins))
        self.user_bins = (
            sp.diags(1.0 / np.maximum(np.asarray(users.sum(axis=1)).ravel(), 1)) @ users
        ).tocsr()
        centres = np.arange(n_bins)
        width = self.bandwidth_days * 86400.0 / bin_seconds
        self.kernel = np.exp(-0.5 * ((centres[:, None] - centres[None, :]) / width) ** 2).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        # (users x bins) x (bins x bins) x (bins x items), never a dense bins x items matrix.
        presence = np.asarray(self.user_bins[users] @ self.kernel, dtype=np.float32)
        return np.asarray((self.bin_items.T @ presence.T).T, dtype=np.float32)
