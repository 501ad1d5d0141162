"""item2vec (Barkan and Koenigstein 2016): skip-gram with negative sampling over sessions, with
gensim's Word2Vec. Items are words, a session is a sentence: the log's own sessions when it has a
session log, otherwise each user's history (cut at long gaps when asked). A user is the mean of the
(unit-length) vectors of their latest items, and items are ranked by cosine similarity to it."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Self

import numpy as np
from gensim.models import Word2Vec

from models.base import Recommender
from models.data import Interactions


def stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with hash(word + seed); Python's own str hash changes
    between processes, so a stable one keeps runs reproducible."""
    return zlib.crc32(text.encode())


def sentences(train: Interactions, gap_seconds: float | None) -> list[list[str]]:
    """The sessions of the session log when the log has one; otherwise each user's items in time
    order, cut wherever two interactions are more than `gap_seconds` apart (never cut when None).
    Single-item sentences carry no co-occurrence and are dropped."""
    if train.sessions is not None:
        chunks = train.session_sequences()
    else:
        ordered = train.frame.sort_values(["user", "timestamp"], kind="stable")
        users = ordered["user"].to_numpy()
        breaks = np.r_[True, users[1:] != users[:-1]]
        if gap_seconds is not None:
            breaks |= np.r_[True, np.diff(ordered["timestamp"].to_numpy()) > gap_seconds]
        chunks = np.split(ordered["item"].to_numpy(), np.flatnonzero(breaks)[1:])
    return [chunk.astype(str).tolist() for chunk in chunks if len(chunk) > 1]


@dataclass
class Item2Vec(Recommender):
    name = "item2vec"
    vector_size: int = 64
    window: int = 10
    negative: int = 10
    ns_exponent: float = 0.75
    epochs: int = 10
    sample: float = 1e-3
    session_gap_hours: float | None = None  # only for logs without a session log
    history: int = 50
    random_state: int = 0
    workers: int = 1
    vectors: np.ndarray = field(init=False, repr=False)
    latest: dict[int, np.ndarray] = field(init=False, repr=False)

    def fit(self, train: Interactions) -> Self:
        gap = None if self.session_gap_hours is None else self.session_gap_hours * 3600.0
        corpus = sentences(train, gap)
        self.vectors = np.zeros((train.n_items, self.vector_size), np.float32)
        if corpus:  # gensim refuses an empty corpus; with no co-occurrence every vector stays zero
            model = Word2Vec(
                sentences=corpus,
                vector_size=self.vector_size,
                window=self.window,
                min_count=1,
                sg=1,
                negative=self.negative,
                ns_exponent=self.ns_exponent,
                epochs=self.epochs,
                sample=self.sample,
                seed=self.random_state,
                workers=self.workers,
                hashfxn=stable_hash,
            )
            known = np.fromiter(model.wv.index_to_key, dtype=np.int64, count=len(model.wv.index_to_key))
            self.vectors[known] = model.wv.get_normed_vectors()
        self.latest = {user: items[-self.history :] for user, items in train.sequences().items()}
        return self

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        empty = np.empty(0, dtype=np.int64)
        profiles = np.stack([self.vectors[self.latest.get(int(user), empty)].sum(axis=0) for user in users])
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        return profiles / np.where(norms > 0, norms, 1.0)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors(users) @ self.vectors.T

    def item_vectors(self) -> np.ndarray:
        return self.vectors
