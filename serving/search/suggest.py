"""Popular queries for autocompletion, from the shoppers' search events.

A query is only ever suggested once enough distinct sessions searched for it: what one shopper
typed (a name, an order number) must never be shown to another. Below that threshold the
sessions are remembered; above it only the count grows."""

from __future__ import annotations

import bisect
import heapq
import threading

from serving.search.documents import normalise_text

MIN_SESSIONS = 3
MAX_QUERY_CHARS = 100


class PopularQueries:
    def __init__(self, min_sessions: int = MIN_SESSIONS) -> None:
        self.min_sessions = min_sessions
        self._pending: dict[str, set[str]] = {}
        self._counts: dict[str, int] = {}
        self._sorted: list[str] = []
        self._dirty = False
        self._lock = threading.Lock()

    def record(self, query: str, session_id: str) -> None:
        key = normalise_text(query)
        if not key or len(key) > MAX_QUERY_CHARS:
            return
        if key in self._counts:
            self._counts[key] += 1
            return
        sessions = self._pending.setdefault(key, set())
        sessions.add(session_id)
        if len(sessions) >= self.min_sessions:
            self._counts[key] = len(sessions)
            del self._pending[key]
            self._dirty = True

    def counts(self) -> dict[str, int]:
        """The suggestible queries (sessions below the threshold are not kept in snapshots)."""
        return dict(self._counts)

    def restore(self, counts: dict[str, int]) -> None:
        for query, count in counts.items():
            self._counts[query] = self._counts.get(query, 0) + count
        self._dirty = True

    def count(self, query: str) -> int:
        return self._counts.get(normalise_text(query), 0)

    def complete(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """The most searched popular queries starting with `prefix`, with their counts."""
        key = normalise_text(prefix)
        with self._lock:
            if self._dirty:
                self._sorted, self._dirty = sorted(self._counts), False
            keys = self._sorted
        start = bisect.bisect_left(keys, key)
        end = bisect.bisect_left(keys, key + "\U0010ffff")
        return heapq.nsmallest(limit, ((query, self._counts[query]) for query in keys[start:end]),
                               key=lambda item: (-item[1], item[0]))
