"""Hyper-parameter choice on a validation split of the training data (never the test part).

Coordinate search: one hyper-parameter at a time over its candidate values, the others held at the
best so far. It needs a handful of fits per model (the sum, not the product, of the grid sizes),
which keeps tuning affordable on large logs, and it prefers the earlier (default) value on ties."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from models.base import Recommender
from models.evaluation import Scoring
from models.protocols import Split

Grid = Mapping[str, Sequence[object]]


@dataclass
class Tuned:
    """The chosen hyper-parameters, the model fitted with them on the validation split's training
    part (blends reuse it), its validation figure and every trial."""

    params: dict[str, object]
    validation_model: Recommender
    validation_score: float
    trials: list[tuple[dict[str, object], float]] = field(default_factory=list)


def tune(
    build: Callable[..., Recommender],
    grid: Grid,
    validation: Split,
    scoring: Scoring = Scoring(),
    defaults: Mapping[str, object] | None = None,
) -> Tuned:
    """Choose `build`'s keyword arguments from `grid` by `scoring.target` on `validation`."""
    cache: dict[tuple, tuple[Recommender, float]] = {}

    def trial(params: dict[str, object]) -> tuple[Recommender, float]:
        key = tuple(sorted(params.items()))
        if key not in cache:
            model = build(**params).fit(validation.train)
            cache[key] = (model, scoring(model, validation)[scoring.target])
        return cache[key]

    best = {**(defaults or {}), **{name: values[0] for name, values in grid.items()}}
    best_model, best_score = trial(best)
    for name, values in grid.items():
        for value in values:
            candidate = {**best, name: value}
            model, score = trial(candidate)
            if score > best_score:
                best, best_model, best_score = candidate, model, score
    trials = [(dict(key), score) for key, (_, score) in cache.items()]
    return Tuned(best, best_model, best_score, trials)
