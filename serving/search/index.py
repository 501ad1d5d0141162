"""The search index: columns, lexical index and vectors over one slot numbering, changed together.

`apply` is the only way products enter or leave; it embeds only products whose text changed, so a
price or stock update costs a column write and a lexical re-index, never a model call."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice

import numpy as np

from serving.search.columns import Columns
from serving.search.documents import ProductDocument
from serving.search.lexical import LexicalIndex
from serving.search.suggest import PopularQueries
from serving.search.vectors import Embedder, VectorIndex

# Rebuild the main vector index once the exact delta exceeds this share of the catalog.
DELTA_REBUILD_SHARE = 0.05
DELTA_REBUILD_MIN = 2_000

Progress = Callable[[int], None]
KnownVector = Callable[[ProductDocument], "np.ndarray | None"]


class SearchIndex:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.columns = Columns()
        self.lexical = LexicalIndex()
        self.vectors = VectorIndex(embedder.dimension)
        self.text_hashes: dict[str, str] = {}
        self.popularity: dict[str, float] = {}
        self.queries = PopularQueries()

    def __len__(self) -> int:
        return self.columns.visible_count()

    def apply(self, documents: Sequence[ProductDocument], removed_ids: Iterable[str] = (),
              known_vector: KnownVector | None = None) -> None:
        """Add or replace `documents` and hide `removed_ids`. A product is embedded only when its
        text changed and `known_vector` (a snapshot's vectors, say) has no vector for it."""
        hashes = [document.text_hash() for document in documents]
        changed = [row for row, (document, digest) in enumerate(zip(documents, hashes, strict=True))
                   if self.text_hashes.get(document.id) != digest]
        known = [known_vector(documents[row]) if known_vector else None for row in changed]
        unknown = [row for row, vector in zip(changed, known, strict=True) if vector is None]
        embedded = iter(self.embedder.embed([documents[row].embedding_text() for row in unknown]))
        vectors = np.array([vector if vector is not None else next(embedded) for vector in known],
                           dtype=np.float32).reshape(len(changed), self.vectors.dimension)
        slots = [self.columns.upsert(document, self.popularity.get(document.id, 0.0))[0] for document in documents]
        self.vectors.put(np.array([slots[row] for row in changed], dtype=np.int64), vectors)
        for document, digest in zip(documents, hashes, strict=True):
            self.text_hashes[document.id] = digest
        hidden = [slot for slot in map(self.columns.hide, removed_ids) if slot is not None]
        self.lexical.apply(zip(slots, documents, strict=True), hidden)

    def load(self, documents: Iterable[ProductDocument], batch_size: int = 4096, progress: Progress | None = None,
             known_vector: KnownVector | None = None) -> None:
        """Index a whole catalog in batches, then build the main vector index."""
        iterator = iter(documents)
        with self.lexical.bulk():
            while batch := list(islice(iterator, batch_size)):
                self.apply(batch, known_vector=known_vector)
                if progress:
                    progress(len(batch))
        self.vectors.rebuild()

    def rebuild_vectors_if_needed(self) -> bool:
        if self.vectors.delta_size > max(DELTA_REBUILD_MIN, DELTA_REBUILD_SHARE * self.columns.size):
            self.vectors.rebuild()
            return True
        return False

    def add_popularity(self, increments: dict[str, float]) -> None:
        for product_id, weight in increments.items():
            total = self.popularity[product_id] = self.popularity.get(product_id, 0.0) + weight
            slot = self.columns.slot_of.get(product_id)
            if slot is not None:
                self.columns.set_popularity(slot, total)

    def item_vector(self, product_id: str) -> np.ndarray | None:
        slot = self.columns.slot_of.get(product_id)
        return self.vectors.vectors(np.array([slot]))[0] if slot is not None else None
