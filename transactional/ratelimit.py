"""Per-tenant token buckets (in process). The refill rate comes from the tenant's plan."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class TokenBuckets:
    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: object, per_minute: int) -> Decision:
        """Spend one token from `key`'s bucket (capacity = one minute's allowance)."""
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return Decision(True, per_minute, int(tokens - 1.0), 0)
            self._buckets[key] = (tokens, now)
            return Decision(False, per_minute, 0, max(1, math.ceil((1.0 - tokens) / rate)))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


tenant_buckets = TokenBuckets()
