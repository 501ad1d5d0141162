"""A/B assignment on the hot path: which variant of the running experiment a user sees.

Assignment is a pure function of (experiment key, user key): the pair is hashed to a point in
[0, 1) and the variants' shares, in their stored order, cut that interval into buckets. The same
user therefore gets the same variant in every process and after every restart, with no state to
share, and different experiments split users independently of each other.

Experiments are defined by operators (`transactional.services.experiments`, /v1/admin/experiments)
and read from PostgreSQL by a background thread every `refresh_seconds`; `assign` only reads the
last snapshot, so a request never waits on the database. Until the first read succeeds, and when
no experiment runs on a surface, `assign` answers None and the surface serves its default. A
failed read keeps the previous snapshot (a database blip must not end an experiment).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from transactional.db import PLATFORM, session_scope
from transactional.observability import log
from transactional.services.experiments import ExperimentOut, running_experiments

SurfaceName = Literal["recommendations", "search"]
_HASH_SPACE = float(2**64)

# Keys of a shopper event's `context` that tie it to the response that showed the item: serving
# responses carry them, server-side impressions record them, and clients echo them on clicks and
# add-to-carts of the items shown. The experiment report (dbt platform_experiment_results) reads them.
CONTEXT_KEYS = ("experiment", "variant", "model_version", "request_id")


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str
    model_version: str | None
    strategy: str | None


class ExperimentTag(BaseModel):
    """Added to serving responses: the experiment and variant that produced them, and the
    `event_context` clients copy into the `context` of events about the items shown."""

    experiment: str | None = Field(description="the running experiment's key; null when none runs")
    variant: str | None
    model_version: str | None
    strategy: str | None
    request_id: str = Field(description="this response's correlation id")

    @classmethod
    def of(cls, assignment: Assignment | None, request_id: str) -> ExperimentTag:
        if assignment is None:
            return cls(experiment=None, variant=None, model_version=None, strategy=None,
                       request_id=request_id)
        return cls(experiment=assignment.experiment, variant=assignment.variant,
                   model_version=assignment.model_version, strategy=assignment.strategy,
                   request_id=request_id)

    @computed_field(description="copy into the `context` of the events about the items shown")
    @property
    def event_context(self) -> dict[str, str]:
        return {key: value for key in CONTEXT_KEYS if (value := getattr(self, key)) is not None}


def bucket(experiment_key: str, user_key: str) -> float:
    """The user's point in [0, 1) for this experiment (uniform, stable, independent per experiment)."""
    digest = hashlib.blake2b(f"{experiment_key}\x00{user_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE


@dataclass(frozen=True)
class _Running:
    key: str
    assignments: tuple[Assignment, ...]
    upper_bounds: tuple[float, ...]  # cumulative shares; the last is 1

    @classmethod
    def of(cls, experiment: ExperimentOut) -> _Running:
        bounds, total = [], 0
        for variant in experiment.variants:
            total += variant.share
            bounds.append(float(total))
        bounds[-1] = 1.0
        return cls(experiment.key, tuple(Assignment(experiment.key, v.name, v.model_version, v.strategy)
                                         for v in experiment.variants), tuple(bounds))

    def assign(self, user_key: str) -> Assignment:
        point = bucket(self.key, user_key)
        index = next(i for i, bound in enumerate(self.upper_bounds) if point < bound)
        return self.assignments[index]


class ExperimentCache:
    """The running experiments by surface, refreshed in the background."""

    def __init__(self, load: Callable[[], list[ExperimentOut]] | None = None) -> None:
        self._load = load or _load_running
        self._running: dict[str, _Running] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def assign(self, user_key: str | None, surface: SurfaceName) -> Assignment | None:
        running = self._running.get(surface)  # one dict read: the snapshot is swapped whole
        return running.assign(user_key) if running is not None and user_key else None

    def refresh(self) -> None:
        """Read the running experiments now (the background thread calls this periodically)."""
        self._running = {experiment.surface.value: _Running.of(experiment) for experiment in self._load()}

    def start(self, refresh_seconds: float) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._follow, args=(refresh_seconds,),
                                            name="experiments-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=10)

    def _follow(self, refresh_seconds: float) -> None:
        while True:
            try:
                self.refresh()
            except Exception:  # keep serving the last snapshot; the next round retries
                log.warning("experiments refresh failed", exc_info=True)
            if self._stop.wait(refresh_seconds):
                return


def _load_running() -> list[ExperimentOut]:
    with session_scope(PLATFORM) as session:
        return running_experiments(session)


experiments = ExperimentCache()


def assign(user_key: str | None, surface: SurfaceName) -> Assignment | None:
    """The variant `user_key` (a user id, or `anon:<device id>`) sees on `surface`; None when no
    experiment runs there (or before the first refresh). Never touches the database."""
    return experiments.assign(user_key, surface)
