"""A registered model bound to the live catalogue: its vector rows (codes) <-> catalogue slots.

The model knows the products it was trained on; the catalogue (the search index's columns) knows
what can be shown. Both directions are numpy arrays, so a request maps hundreds of FAISS hits to
slots, or a shopper's items to vectors, in one indexing operation. `sync` maps products that
entered the catalogue since the last call; it runs on the service's background thread (one
writer), and readers tolerate a mapping shorter than the catalogue (a product without a mapping
is simply not in the model)."""

from __future__ import annotations

import numpy as np

from serving.recommend.registry import ModelArtifacts
from serving.search.columns import Columns

_UNKNOWN = -1


class ServingModel:
    def __init__(self, artifacts: ModelArtifacts, columns: Columns) -> None:
        self.artifacts = artifacts
        self.columns = columns
        self.dimension = artifacts.item_vectors.shape[1]
        norms = np.linalg.norm(artifacts.item_vectors, axis=1, keepdims=True)
        # Normalised once here: every request gathers a few hundred of them.
        self._unit_vectors = np.divide(artifacts.item_vectors, norms, out=np.zeros_like(artifacts.item_vectors),
                                       where=norms > 0)
        self._slot_code = np.empty(0, dtype=np.int64)
        self._code_slot = np.full(len(artifacts.items), _UNKNOWN, dtype=np.int64)
        self.sync()

    @property
    def version(self) -> str:
        return self.artifacts.version

    def sync(self) -> None:
        """Map the catalogue slots added since the last call."""
        mapped, size = len(self._slot_code), self.columns.size
        if size <= mapped:
            return
        codes = self.artifacts.items.codes(self.columns.ids[mapped:size])
        known = codes >= 0
        self._code_slot[codes[known]] = np.arange(mapped, size)[known]
        self._slot_code = np.concatenate([self._slot_code, codes])  # published whole, after the rows are set

    def codes_of(self, slots: np.ndarray) -> np.ndarray:
        """Model code per slot, -1 for products the model does not know."""
        mapping = self._slot_code
        inside = slots < len(mapping)
        return np.where(inside, mapping[np.where(inside, slots, 0)] if len(mapping) else _UNKNOWN, _UNKNOWN)

    def slots_of(self, codes: np.ndarray) -> np.ndarray:
        """Catalogue slot per code (FAISS pads with -1), -1 where the product is not in the catalogue."""
        valid = codes >= 0
        return np.where(valid, self._code_slot[np.where(valid, codes, 0)], _UNKNOWN)

    def unit_vectors(self, codes: np.ndarray) -> np.ndarray:
        """Unit-length item vectors of known codes (cosine similarity between items)."""
        return self._unit_vectors[codes]

    def user_vector(self, user_key: str | None) -> np.ndarray | None:
        return self.artifacts.user_vector(user_key) if user_key else None

    def nearest(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots, inner products), one row per query: the `count` nearest model items by the FAISS
        index, mapped to the catalogue (-1 for items no longer in it)."""
        count = min(count, self.artifacts.index.ntotal)
        scores, codes = self.artifacts.index.search(np.ascontiguousarray(queries, dtype=np.float32), count)
        return self.slots_of(codes), scores

    def exact(self, query: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slots the model knows, their inner product with `query`): exact scoring of a short list."""
        codes = self.codes_of(slots)
        known = codes >= 0
        return slots[known], self.artifacts.item_vectors[codes[known]] @ query
