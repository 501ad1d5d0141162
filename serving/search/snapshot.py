"""A saved index: the products, their vectors and where the change feeds were read up to.

Embedding is the expensive part of building an index (minutes for 100k products on a CPU), so a
snapshot lets a server start in seconds and lets a rebuild re-embed only products whose text
changed. It is written to a temporary directory and renamed into place, so a reader never sees a
half-written snapshot."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from serving.search.documents import ProductDocument
from serving.search.index import SearchIndex
from transactional.services.change_feed import FeedPosition

FORMAT_VERSION = 1


@dataclass
class Snapshot:
    documents: list[ProductDocument]
    vectors: np.ndarray
    positions: dict[str, FeedPosition]
    popularity: dict[str, float]
    query_counts: dict[str, int]

    def vectors_by_id(self) -> dict[str, tuple[str, np.ndarray]]:
        """product id -> (text hash, vector), to reuse vectors when rebuilding."""
        return {document.id: (document.text_hash(), self.vectors[row])
                for row, document in enumerate(self.documents)}


def capture(index: SearchIndex, positions: dict[str, FeedPosition]) -> Snapshot:
    """The visible products of `index` with their vectors."""
    view = index.columns.view()
    slots = np.flatnonzero(view["visible"])
    return Snapshot(
        documents=[index.columns.documents[slot] for slot in slots],
        vectors=index.vectors.vectors(slots),
        positions=positions,
        popularity=dict(index.popularity),
        query_counts=index.queries.counts(),
    )


def save(snapshot: Snapshot, directory: Path) -> None:
    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pl.DataFrame([document.as_record() for document in snapshot.documents],
                 infer_schema_length=None).write_parquet(staging / "products.parquet")
    np.save(staging / "vectors.npy", snapshot.vectors)
    (staging / "state.json").write_text(json.dumps({
        "format": FORMAT_VERSION,
        "positions": {feed: asdict(position) for feed, position in snapshot.positions.items()},
        "popularity": snapshot.popularity,
        "query_counts": snapshot.query_counts,
    }))
    previous = directory.with_name(directory.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def load(directory: Path) -> Snapshot | None:
    """The snapshot in `directory`, or None when there is none (or of another format)."""
    state_file = directory / "state.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    if state.get("format") != FORMAT_VERSION:
        return None
    records = pl.read_parquet(directory / "products.parquet").to_dicts()
    return Snapshot(
        documents=[ProductDocument.from_record(record) for record in records],
        vectors=np.load(directory / "vectors.npy"),
        positions={feed: FeedPosition(**position) for feed, position in state["positions"].items()},
        popularity=state["popularity"],
        query_counts=state["query_counts"],
    )
