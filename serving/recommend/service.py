"""Recommendations in a serving process: the champion model, swapped without a failed request;
shopper histories and trending counts following the event feed; results cached per shopper.

Start-up (a background thread, so /healthz answers at once): wait for the search service's
catalogue (the columns recommendations filter and rank on: one catalogue in memory, one change
feed follower), subscribe to its shopper-events batches, then load the registry's `champion`
version (model, vectors, ids, FAISS index) and map it onto the catalogue. /readyz is ready once
the catalogue is in memory and the first model load has concluded (loaded, none registered, or
failed: recommendations then answer popular results flagged `degraded`).

Hot swap: every `poll_seconds` the registry is asked which version is champion. A new one is
loaded and mapped completely beside the old, then one reference (`self._models`) is replaced. A
request reads that reference once and uses what it got to the end, so requests in flight finish
on the old version and the next ones start on the new, and none fails. Versions that experiments
assign (`serving.experiments.assign` -> `Assignment.model_version`) are loaded the same way and
kept, keyed by version, while they are asked for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from cachetools import TTLCache
from sqlalchemy import text

from serving.config import RecommendationSettings
from serving.experiments import Assignment
from serving.recommend.engine import Pick, RecommendationEngine, RecommendationRequest
from serving.recommend.features import CachedFeatures, FeatureRead, OnlineItemFeatures, feast_features
from serving.recommend.history import ShopperHistories
from serving.recommend.model import ServingModel
from serving.recommend.popular import PopularityRanking, Trending
from serving.recommend.registry import champion_version, load_version
from serving.search.catalog_source import INTERACTION_WEIGHTS
from serving.search.columns import Columns
from serving.search.service import SearchService
from transactional.db import owner_engine
from transactional.errors import ProblemError
from transactional.observability import log
from transactional.services.change_feed import FeedPosition

SURFACE = "recommendations"
PERSONALISED_STRATEGY, POPULAR_STRATEGY = "personalised", "popular"
# A version experiments stop asking for is unloaded after this long.
UNUSED_VERSION_SECONDS = 600.0
RETRY_SECONDS = 5.0


class RecommendationsUnavailable(ProblemError):
    status, title = 503, "Service unavailable"


@dataclass(frozen=True)
class ModelSet:
    """What serves: swapped as a whole, never changed in place."""

    champion: ServingModel | None = None
    by_version: dict[str, ServingModel] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommendations:
    picks: list[Pick]
    model_version: str | None
    strategy: str  # personalised | popular
    degraded: bool = False
    degraded_reasons: tuple[str, ...] = ()
    cached: bool = False


class RecommendationService:
    def __init__(self, search: SearchService, settings: RecommendationSettings,
                 features: OnlineItemFeatures | None = None) -> None:
        self.search = search
        self.settings = settings
        self.features = self._cached_features(features) if features is not None else None
        self.histories = ShopperHistories(settings.history_events, settings.history_users, settings.history_seconds)
        self.trending = Trending(settings.trending_half_life_hours)
        self.state = "waiting for the catalogue"
        self.model_error: str | None = None
        self.last_registry_check: float | None = None  # epoch seconds
        self._engine: RecommendationEngine | None = None
        self._ranking = PopularityRanking.empty()
        self._ranked_changes: tuple[int, int] | None = None  # (catalogue, trending) changes the ranking saw
        self._models = ModelSet()
        self._model_checked = False
        self._wanted: dict[str, float] = {}  # versions experiments asked for -> monotonic time
        self._failed: dict[str, float] = {}  # versions that failed to load -> monotonic time
        self._trending_after = FeedPosition()
        self._cache: TTLCache | None = TTLCache(settings.cache_size, settings.cache_seconds) \
            if settings.cache_seconds > 0 else None
        self._cache_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._engine is not None and self._model_checked

    @property
    def engine(self) -> RecommendationEngine:
        if self._engine is None:
            raise RecommendationsUnavailable(f"recommendations are {self.state}; retry shortly", field="catalog")
        return self._engine

    @property
    def models(self) -> ModelSet:
        return self._models

    @property
    def model_version(self) -> str | None:
        champion = self._models.champion
        return champion.version if champion is not None else None

    # -- opening ----------------------------------------------------------------------------------

    def open(self) -> None:
        """Bind to the search service's catalogue and start following shopper events."""
        columns = self.search.engine.index.columns
        if self.features is None and self.settings.feature_store:  # importing Feast takes seconds: not at start-up
            online = feast_features(self.settings.feature_service)
            self.features = self._cached_features(online) if online is not None else None
        if self.features is not None:
            self.features.warm()
        self._trending_after = self.search.positions.get("shopper_events", FeedPosition())
        self.search.shopper_event_listeners.append(self._observe)
        self._load_trending(columns)
        self._engine = RecommendationEngine(columns, self.settings)
        self.refresh()

    def _cached_features(self, online: OnlineItemFeatures) -> CachedFeatures:
        return CachedFeatures(online, self.settings.feature_cache_seconds, self.settings.feature_timeout_seconds)

    def _load_trending(self, columns: Columns) -> None:
        """Interactions up to the feed position the search index stands at (later ones arrive
        through `_observe`), decayed to the trending reference time."""
        since = self.trending.since()
        with owner_engine().connect() as connection:
            rows = connection.execute(text(
                "SELECT product_id::text, sum(CASE event_type "
                + " ".join(f"WHEN '{event}' THEN {weight}" for event, weight in INTERACTION_WEIGHTS.items())
                + " END * power(2.0, (extract(epoch FROM occurred_at) - :reference) / :half_life))"
                " FROM shopper_events WHERE product_id IS NOT NULL AND event_type = ANY(:types)"
                " AND occurred_at >= to_timestamp(:since)"
                " AND (txid, seq) <= (CAST(CAST(:txid AS text) AS xid8), :seq) GROUP BY product_id"),
                {"reference": self.trending.reference, "half_life": self.trending.half_life,
                 "types": list(INTERACTION_WEIGHTS), "since": since, "txid": self._trending_after.txid,
                 "seq": self._trending_after.seq}).all()
        known = [(columns.slot_of[product_id], float(score)) for product_id, score in rows
                 if product_id in columns.slot_of]
        if known:
            slots, scores = map(np.array, zip(*known, strict=True))
            self.trending.add(slots.astype(np.int64), scores, np.full(len(slots), self.trending.reference))

    def _observe(self, events: list[dict]) -> None:
        """A shopper-events batch from the search service's feed reader."""
        try:
            self.histories.observe(events)
            columns = self.search.engine.index.columns
            counted = [(slot, INTERACTION_WEIGHTS[event["event_type"]], event["occurred_at"].timestamp())
                       for event in events
                       if event["event_type"] in INTERACTION_WEIGHTS and event["product_id"] is not None
                       and FeedPosition(event["txid"], event["seq"]) > self._trending_after
                       and (slot := columns.slot_of.get(str(event["product_id"]))) is not None]
            if counted:
                slots, weights, at = map(np.array, zip(*counted, strict=True))
                self.trending.add(slots.astype(np.int64), weights.astype(np.float64), at.astype(np.float64))
        except Exception:  # never let recommendations stop the search index from following the feed
            log.exception("recommendations could not follow shopper events")

    # -- keeping fresh ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-rank popular products (when the catalogue or trending changed: ranking 1M products
        takes a core for a while) and map new catalogue products onto the loaded models."""
        columns = self.engine.columns
        changes = (columns.changes, self.trending.changes)
        if changes != self._ranked_changes:
            view = columns.view()
            self._ranking = PopularityRanking.build(view, self.trending.scores(view.size))
            self._ranked_changes = changes
        for model in {id(m): m for m in (self._models.champion, *self._models.by_version.values())
                      if m is not None}.values():
            model.sync()

    def check_registry(self) -> None:
        """Load a new champion and any version experiments asked for; swap them in whole."""
        registered = champion_version(self.settings.registered_model)
        self.last_registry_check = time.time()
        models = self._models
        # An empty or mis-pointed registry is likelier than a withdrawn model: the loaded champion
        # serves on until the alias names another version.
        version = registered or (models.champion.version if models.champion is not None else None)
        now = time.monotonic()
        wanted = {v for v, asked in self._wanted.items() if now - asked < UNUSED_VERSION_SECONDS}
        keep = ({version} - {None}) | wanted
        loaded = dict(models.by_version)
        for needed in keep - set(loaded):
            if now - self._failed.get(needed, -np.inf) < self.settings.poll_seconds:
                continue
            try:
                self.state = f"loading model version {needed}"
                loaded[needed] = ServingModel(load_version(self.settings.registered_model, needed),
                                              self.engine.columns)
                self._failed.pop(needed, None)
                log.info("recommendation model loaded", version=needed, items=len(loaded[needed].artifacts.items))
            except Exception as error:  # a broken version must not stop the others from serving
                self._failed[needed] = now
                self.model_error = f"version {needed}: {error}"
                log.exception("recommendation model could not be loaded", version=needed)
        self._models = ModelSet(loaded.get(version), {v: model for v, model in loaded.items() if v in keep})
        self._model_checked = True
        if version is None:
            self.state = "no champion registered"
        elif version not in loaded:
            self.state = f"model version {version} failed to load"
        elif registered is None:
            self.state = f"no champion registered; still serving version {version}"
        else:
            self.state, self.model_error = "ready", None

    # -- the background thread --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recommendations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observe in self.search.shopper_event_listeners:
            self.search.shopper_event_listeners.remove(self._observe)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while self._engine is None and not self._stop.is_set():
            try:
                if self.search.ready:
                    self.open()
                    break
            except Exception:  # the database may be away: keep trying, stay unready
                self.state = "waiting for the database"
                log.exception("recommendations could not start")
                self._stop.wait(RETRY_SECONDS)
            self._stop.wait(0.2)
        next_check = next_refresh = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.settings.poll_seconds
                self._guarded(self.check_registry, "registry")
            if now >= next_refresh:
                next_refresh = now + self.settings.refresh_seconds
                self._guarded(self.refresh, "refresh")
            self._stop.wait(max(0.05, min(next_check, next_refresh) - time.monotonic()))

    def _guarded(self, step: Callable[[], None], name: str) -> None:
        """One background step; a failure is logged and retried next round while serving goes on."""
        try:
            step()
        except Exception as error:
            if name == "registry":
                self._model_checked = True  # an unreachable registry must not keep the process unready
                if self._models.champion is None:
                    self.state = f"registry unavailable: {str(error).splitlines()[0] if str(error) else error!r}"
            log.exception("recommendations background step failed", step=name)

    # -- answering --------------------------------------------------------------------------------

    def _model_for(self, version: str | None) -> ServingModel | None:
        models = self._models  # one read: the set cannot change under this request
        if version is not None:
            self._wanted[version] = time.monotonic()
            if version in models.by_version:
                return models.by_version[version]
        return models.champion

    def answers_from_memory(self, request: RecommendationRequest) -> bool:
        """Whether `recommend` waits on nothing outside this process: the shopper's history is in
        memory and no feature store is asked (none configured, or failing and retried in the
        background). The API answers those on its event loop, the others in a worker thread."""
        return not self.histories.must_read(request.user_key) and (self.features is None or self.features.failing)

    def recommend(self, request: RecommendationRequest, assignment: Assignment | None = None) -> Recommendations:
        """The list for `request`; an experiment's `assignment` picks the model version (kept
        loaded while asked for; the champion serves until it is) or the `popular` strategy."""
        engine = self.engine
        history = self.histories.get(request.user_key)
        if request.item_id is not None:
            engine.item_slot(request.item_id)  # 404 for an unknown item whatever answers
        if assignment is not None and assignment.strategy == POPULAR_STRATEGY:
            return Recommendations(engine.popular(request, history, self._ranking), None, POPULAR_STRATEGY)
        model = self._model_for(assignment.model_version if assignment is not None else None)
        if model is None:
            return Recommendations(engine.popular(request, history, self._ranking), None, POPULAR_STRATEGY,
                                   True, (f"model_unavailable: {self._unavailable_reason()}",))
        key = (request, history.generation, model.version)
        cached = self._cached(key)
        if cached is not None:
            return cached
        features = FeatureRead(self.features)
        try:
            picks = engine.recommend(request, model, history, self._ranking, features)
        except ProblemError:
            raise
        except Exception as error:  # a failing model or index: popular results rather than an error
            log.exception("recommendation model failed", version=model.version)
            return Recommendations(engine.popular(request, history, self._ranking), None, POPULAR_STRATEGY,
                                   True, (f"model_failed: {type(error).__name__}",))
        degraded = (f"feature_store_unavailable: {features.unavailable}",) if features.unavailable else ()
        result = Recommendations(picks, model.version, PERSONALISED_STRATEGY, bool(degraded), degraded)
        if not degraded:
            self._store(key, result)
        return result

    def _unavailable_reason(self) -> str:
        return self.model_error or self.state

    def _cached(self, key: tuple) -> Recommendations | None:
        if self._cache is None:
            return None
        with self._cache_lock:
            result = self._cache.get(key)
        if result is None:
            return None
        # Stock and suspensions change between requests: a cached item must still pass.
        view = self.engine.columns.view()
        slots = np.array([pick.slot for pick in result.picks], dtype=np.int64)
        if len(slots) and not (view["visible"][slots] & view["in_stock"][slots]).all():
            return None
        return replace(result, cached=True)

    def _store(self, key: tuple, result: Recommendations) -> None:
        if self._cache is not None:
            with self._cache_lock:
                self._cache[key] = result
