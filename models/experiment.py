"""Train every model on every split of a protocol and score it: the engine behind `marketlake evaluate`.

Per split: each model's hyper-parameters are chosen on the split's inner validation split (the same
protocol applied to the training rows), the model is refitted on all training rows with them and
scored on the test rows; the blend's weights are fitted on the same validation split from the
validation-fitted members, then applied to the refitted ones."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from models.als import ImplicitALS
from models.base import Recommender
from models.blend import Blend, fit_weights
from models.data import Interactions
from models.ease import EASE
from models.evaluation import Scoring
from models.item2vec import Item2Vec
from models.popularity import (
    CategoryPopularity,
    DecayedPopularity,
    ItemPopularity,
    TemporalPopularity,
    TenantPopularity,
)
from models.protocols import Split
from models.tuning import Grid, tune


def _sasrec(**params: object) -> Recommender:
    from models.sequential import SASRec

    return SASRec(**params)


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model, which values of its hyper-parameters to try (the first is the default),
    and whether it applies to a log (group popularity needs groups; the sequential model needs torch)."""

    build: Callable[..., Recommender]
    grid: Grid = field(default_factory=dict)
    applies: Callable[[Interactions], bool] = lambda data: True


# Grids span orders of magnitude rather than fine steps: they must suit data sets we have not seen.
MODEL_SPECS: dict[str, ModelSpec] = {
    "item_pop": ModelSpec(ItemPopularity),
    "decayed_pop": ModelSpec(DecayedPopularity, {"half_life_days": [14.0, 1.0, 90.0, 365.0]}),
    "temporal_pop": ModelSpec(TemporalPopularity, {"bandwidth_days": [7.0, 1.0, 30.0, 120.0]}),
    "category_pop": ModelSpec(
        CategoryPopularity, {"prior": [0.05, 0.01, 0.3]}, applies=lambda data: data.item_category is not None
    ),
    "tenant_pop": ModelSpec(
        TenantPopularity, {"prior": [0.05, 0.01, 0.3]}, applies=lambda data: data.item_tenant is not None
    ),
    "als": ModelSpec(
        ImplicitALS,
        {"regularization": [0.05, 0.5, 5.0, 50.0], "alpha": [2.0, 0.5, 8.0, 32.0], "factors": [64, 32, 128]},
    ),
    "ease": ModelSpec(EASE, {"l2": [500.0, 50.0, 150.0, 1500.0, 5000.0]}),
    # `history` (how many of the user's latest items make their profile) is tuned first: with
    # sessions, the last item alone often says most about the next one.
    "item2vec": ModelSpec(Item2Vec, {"history": [50, 5, 1], "window": [10, 3], "ns_exponent": [0.75, -0.5]}),
    "sasrec": ModelSpec(_sasrec, applies=lambda data: importlib.util.find_spec("torch") is not None),
}
DEFAULT_MODELS = tuple(MODEL_SPECS)


@dataclass
class ModelRun:
    """One model on one split: chosen hyper-parameters, validation and test figures, fitted model."""

    split: str
    model_name: str
    params: dict[str, object]
    validation: float
    metrics: dict[str, float]
    fit_seconds: float
    model: Recommender = field(repr=False)


def run_split(
    split: Split,
    model_names: Sequence[str] = DEFAULT_MODELS,
    scoring: Scoring = Scoring(),
    blend: bool = True,
    progress: Callable[[str], None] = lambda message: None,
) -> list[ModelRun]:
    """Tune, fit and score each applicable model on one split, then their blend."""
    validation = split.inner()
    runs, validation_models = [], []
    for name in model_names:
        spec = MODEL_SPECS[name]
        if not spec.applies(split.train):
            continue
        progress(f"{split.name}: tuning {name}")
        started = time.perf_counter()
        tuned = tune(spec.build, spec.grid, validation, scoring)
        model = spec.build(**tuned.params).fit(split.train)
        seconds = time.perf_counter() - started
        runs.append(
            ModelRun(
                split.name,
                name,
                tuned.params,
                tuned.validation_score,
                scoring(model, split),
                seconds,
                model,
            )
        )
        validation_models.append(tuned.validation_model)
    if blend and len(runs) > 1:
        progress(f"{split.name}: fitting blend weights")
        started = time.perf_counter()
        weights, validation_score = fit_weights(validation_models, validation, scoring)
        model = Blend([run.model for run in runs], weights)
        runs.append(
            ModelRun(
                split.name,
                "blend",
                model.params(),
                validation_score,
                scoring(model, split),
                time.perf_counter() - started,
                model,
            )
        )
    return runs


def run(
    splits: Iterable[Split],
    model_names: Sequence[str] = DEFAULT_MODELS,
    scoring: Scoring = Scoring(),
    blend: bool = True,
    progress: Callable[[str], None] = lambda message: None,
) -> list[ModelRun]:
    unknown = set(model_names) - set(MODEL_SPECS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {list(MODEL_SPECS)}")
    return [
        result for split in splits for result in run_split(split, model_names, scoring, blend, progress)
    ]


def table(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """One row per model and split, plus one `mean` row per model when there are several splits."""
    rows = pd.DataFrame(
        [
            {
                "split": run.split,
                "model": run.model_name,
                "validation": run.validation,
                **run.metrics,
                "fit_seconds": run.fit_seconds,
            }
            for run in runs
        ]
    )
    if rows["split"].nunique() > 1:
        means = rows.drop(columns="split").groupby("model", sort=False).mean().reset_index()
        rows = pd.concat([rows, means.assign(split="mean")], ignore_index=True)
    return rows
