"""FAISS indexes over item vectors for fast top-k retrieval by inner product.

The kind follows the catalogue size: exact (flat) search for small catalogues, where it is already
fast; HNSW graphs for mid-sized ones; IVF (inverted lists) for millions of items, where a graph's
memory grows too large. The search effort (HNSW efSearch, IVF nprobe) is raised until recall@k
against exact search on sample queries reaches `target_recall`, and that recall is reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["flat", "hnsw", "ivf"]
FLAT_BELOW = 5_000
IVF_FROM = 1_000_000


@dataclass
class VectorIndex:
    index: faiss.Index
    kind: IndexKind
    recall: float
    search_effort: int

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Item codes of the k best matches per query (-1 where fewer exist)."""
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]

    def save(self, path: Path) -> Path:
        faiss.write_index(self.index, str(path))
        return path


def choose_kind(n_items: int) -> IndexKind:
    if n_items < FLAT_BELOW:
        return "flat"
    return "hnsw" if n_items < IVF_FROM else "ivf"


def exact_index(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def _approximate_index(vectors: np.ndarray, kind: IndexKind, random_state: int) -> faiss.Index:
    dimension = vectors.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        # About 4 sqrt(n) lists, with the 39 training points per centroid k-means asks for.
        lists = max(1, min(int(4 * np.sqrt(len(vectors))), len(vectors) // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = random_state
        index.train(vectors)
    index.add(vectors)
    return index


def _set_effort(index: faiss.Index, kind: IndexKind, effort: int) -> None:
    if kind == "hnsw":
        index.hnsw.efSearch = effort
    elif kind == "ivf":
        index.nprobe = min(effort, index.nlist)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k that the approximate search also returned."""
    return float(np.mean([len(np.intersect1d(a, e)) / len(e) for a, e in zip(found, exact)]))


def build_index(
    vectors: np.ndarray,
    queries: np.ndarray | None = None,
    k: int = 10,
    target_recall: float = 0.95,
    kind: IndexKind | None = None,
    sample_queries: int = 1000,
    random_state: int = 0,
) -> VectorIndex:
    """An index over `vectors` (row = item code) tuned on `queries` (user vectors; by default a sample
    of the items themselves) to reach `target_recall` at k against exact search."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = kind or choose_kind(len(vectors))
    if kind == "flat":
        return VectorIndex(exact_index(vectors), "flat", 1.0, 0)
    rng = np.random.default_rng(random_state)
    pool = vectors if queries is None else np.ascontiguousarray(queries, dtype=np.float32)
    sample = pool[rng.choice(len(pool), size=min(sample_queries, len(pool)), replace=False)]
    k = min(k, len(vectors))
    exact = exact_index(vectors).search(sample, k)[1]
    index = _approximate_index(vectors, kind, random_state)
    limit = len(vectors) if kind == "hnsw" else index.nlist
    effort, recall = (16 if kind == "hnsw" else 1), 0.0
    while True:
        _set_effort(index, kind, effort)
        recall = recall_at_k(index.search(sample, k)[1], exact)
        if recall >= target_recall or effort >= limit:
            return VectorIndex(index, kind, recall, effort)
        effort *= 2
