"""Search in a serving process: build or load the index, keep it fresh, answer when ready.

Start-up: load the saved snapshot when there is one, otherwise build from PostgreSQL (and save a
snapshot for the next start). Either way the index then follows the change feeds from where its
data was read: the outbox (products, SKUs, stock, tenants, categories) re-indexes just the touched
products, and the shopper events feed adds popularity and popular queries. A catalog change is
searchable one refresh interval (default 2 s) after it commits, with no rebuild.

Feed positions are taken *before* the catalog is read, so a change racing the build is either in
the rows read or replayed after; replaying is harmless because the index always re-reads the
current rows (see `catalog_source`)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Connection

from serving.config import SearchSettings
from serving.search import snapshot as snapshots
from serving.search.catalog_source import (
    INTERACTION_WEIGHTS,
    CategoryNames,
    ChangeScope,
    browsable_documents,
    feed_end,
    load_categories,
    lookback,
    product_popularity,
    recent_interactions,
    scoped_documents,
    search_sessions,
)
from serving.search.documents import ProductDocument
from serving.search.engine import SearchEngine
from serving.search.index import Progress, SearchIndex
from serving.search.personalize import InteractionProfiles
from serving.search.vectors import Embedder, shared_embedder
from transactional.db import owner_engine
from transactional.errors import ProblemError
from transactional.observability import log
from transactional.services.change_feed import Feed, FeedPosition, read_changes

FEEDS: tuple[Feed, ...] = ("outbox", "shopper_events")
FEED_BATCH = 5_000
RETRY_SECONDS = 5.0


class SearchUnavailable(ProblemError):
    status, title = 503, "Service unavailable"


@dataclass
class RefreshStats:
    outbox_events: int = 0
    shopper_events: int = 0
    indexed: int = 0
    removed: int = 0


class SearchService:
    def __init__(self, settings: SearchSettings, embedder: Embedder | None = None,
                 snapshot_dir: Path | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or shared_embedder()
        self.snapshot_dir = snapshot_dir or settings.snapshot_path()
        self.positions: dict[str, FeedPosition] = {feed: FeedPosition() for feed in FEEDS}
        self.last_refresh: float | None = None  # epoch seconds of the last completed refresh
        self.state = "starting"
        self._engine: SearchEngine | None = None
        self._categories = CategoryNames(())
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Others following shopper events through this reader (recommendation histories): each
        # batch is handed over as read, so the feed is read once per process.
        self.shopper_event_listeners: list[Callable[[list[dict]], None]] = []

    @property
    def engine(self) -> SearchEngine:
        if self._engine is None:
            raise SearchUnavailable(f"the search index is {self.state}; retry shortly", field="index")
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def seconds_since_refresh(self) -> float | None:
        return round(time.time() - self.last_refresh, 3) if self.last_refresh is not None else None

    # -- building -------------------------------------------------------------------------------

    def _new_index(self, popularity: dict[str, float], query_counts: dict[str, int]) -> SearchIndex:
        index = SearchIndex(self.embedder)
        index.queries.min_sessions = self.settings.suggest_min_sessions
        index.popularity = dict(popularity)
        index.queries.restore(query_counts)
        return index

    def _install(self, index: SearchIndex, positions: dict[str, FeedPosition]) -> None:
        self.embedder.embed(["warm up"])  # loads the model now: the first query must not wait for it
        profiles = InteractionProfiles(self._recent_interactions, index.item_vector)
        self.positions = dict(positions)
        self._engine = SearchEngine(index, self.settings, user_vectors=profiles)
        self.state = "ready"

    def build(self, progress: Progress | None = None, reuse: snapshots.Snapshot | None = None) -> None:
        """Index the live catalog; vectors of `reuse` are kept for products whose text is unchanged."""
        self.state = "building"
        since = lookback(self.settings.popularity_days)
        with owner_engine().connect() as connection:
            positions = {feed: feed_end(connection, feed) for feed in FEEDS}
            self._categories = load_categories(connection)
            index = self._new_index(product_popularity(connection, since), {})
            for query, session in search_sessions(connection, since):
                index.queries.record(query, session)
            known = reuse.vectors_by_id() if reuse else {}
            index.load(browsable_documents(connection, self._categories), progress=progress,
                       known_vector=lambda document: _reusable(known, document))
        self._install(index, positions)

    def load_snapshot(self, snapshot: snapshots.Snapshot, progress: Progress | None = None) -> None:
        self.state = "loading"
        index = self._new_index(snapshot.popularity, snapshot.query_counts)
        vectors = dict(zip((document.id for document in snapshot.documents), snapshot.vectors, strict=True))
        index.load(snapshot.documents, progress=progress, known_vector=lambda document: vectors[document.id])
        with owner_engine().connect() as connection:
            self._categories = load_categories(connection)
        self._install(index, snapshot.positions)

    def save_snapshot(self) -> None:
        with self._refresh_lock:
            snapshot = snapshots.capture(self.engine.index, self.positions)
        snapshots.save(snapshot, self.snapshot_dir)

    def open(self) -> None:
        """Load the saved snapshot, or build from the database and save one."""
        saved = snapshots.load(self.snapshot_dir)
        if saved is not None:
            self.load_snapshot(saved)
            log.info("search index loaded", products=len(saved.documents), snapshot=str(self.snapshot_dir))
        else:
            self.build()
            self.save_snapshot()
            log.info("search index built", products=len(self.engine.index))

    # -- following the feeds --------------------------------------------------------------------

    def refresh(self) -> RefreshStats:
        """Apply every settled change since the last refresh."""
        index = self.engine.index
        stats = RefreshStats()
        with self._refresh_lock, owner_engine().connect() as connection:
            while (batch := read_changes(connection, "outbox", self.positions["outbox"], FEED_BATCH)).rows:
                indexed, removed = self._apply_catalog_changes(connection, index, batch.rows)
                self.positions["outbox"] = batch.position
                stats.outbox_events += len(batch.rows)
                stats.indexed += indexed
                stats.removed += removed
            while (batch := read_changes(connection, "shopper_events", self.positions["shopper_events"],
                                         FEED_BATCH)).rows:
                self._apply_shopper_events(index, batch.rows)
                for listener in self.shopper_event_listeners:
                    listener(batch.rows)
                self.positions["shopper_events"] = batch.position
                stats.shopper_events += len(batch.rows)
            connection.rollback()
        index.rebuild_vectors_if_needed()
        self.last_refresh = time.time()
        return stats

    def _apply_catalog_changes(self, connection: Connection, index: SearchIndex, events: list[dict]
                               ) -> tuple[int, int]:
        scope = ChangeScope()
        for event in events:
            scope.add(event)
        if not scope:
            return 0, 0
        if scope.category_ids:
            self._categories = load_categories(connection)
            scope.category_ids = self._categories.with_descendants(scope.category_ids)
        scope.resolve_skus(connection)
        documents = scoped_documents(connection, self._categories, scope)
        touched = scope.product_ids | set(index.columns.ids_of_tenants(scope.tenant_ids))
        removed = touched - {document.id for document in documents}
        index.apply(documents, removed)
        return len(documents), len(removed)

    @staticmethod
    def _apply_shopper_events(index: SearchIndex, events: list[dict]) -> None:
        increments: dict[str, float] = defaultdict(float)
        for event in events:
            weight = INTERACTION_WEIGHTS.get(event["event_type"])
            if weight and event["product_id"] is not None:
                increments[str(event["product_id"])] += weight
            if event["event_type"] == "search" and event["query"]:
                index.queries.record(event["query"], event["session_id"])
        index.add_popularity(increments)

    def _recent_interactions(self, user_id: str) -> list[tuple[str, float]]:
        with owner_engine().connect() as connection:
            return recent_interactions(connection, uuid.UUID(user_id), self.settings.profile_events)

    # -- the background thread ------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="search-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self.ready and not self._stop.is_set():
            try:
                self.open()
            except Exception:  # the database may not be up yet: keep trying, stay unready
                self.state = "waiting for the database"
                log.exception("search index could not be opened")
                self._stop.wait(RETRY_SECONDS)
        while not self._stop.wait(self.settings.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # a failed pass is retried from the same feed positions
                log.exception("search index refresh failed")


def _reusable(known: dict[str, tuple[str, np.ndarray]], document: ProductDocument) -> np.ndarray | None:
    entry = known.get(document.id)
    return entry[1] if entry is not None and entry[0] == document.text_hash() else None

