"""A/B experiments on the serving surfaces: operators define variants (a model version or a
strategy each) with traffic shares, then start and stop the experiment.

Lifecycle: draft -> running -> stopped, and never back: a stopped experiment's data stays one
experiment's data, and a new run is a new experiment (a new key, hence new assignments). At most
one experiment runs per surface, so each request has at most one assignment; the database
enforces it too (a partial unique index), so two operators starting at once cannot both win.
Variants never change after creation: changing shares mid-run would move users between variants.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transactional.errors import Conflict, NotFound, Unprocessable
from transactional.models import Experiment, ExperimentStatus, Surface

# The strategies each serving surface implements (serving.routes.search.STRATEGIES and the
# recommender's PERSONALISED/POPULAR_STRATEGY). Search has no model versions: its variants name a strategy.
STRATEGIES = {Surface.search: ("hybrid", "lexical", "semantic", "unpersonalised"),
              Surface.recommendations: ("personalised", "popular")}
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", min_length=1, max_length=64)]
MAX_VARIANTS = 10


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug = Field(description="e.g. control, treatment; recorded in responses and events")
    share: Decimal = Field(gt=0, le=1, max_digits=5, decimal_places=4,
                           description="share of the surface's users (the variants' shares sum to 1)")
    model_version: str | None = Field(None, min_length=1, max_length=128,
                                      description="the registered model version this variant serves")
    strategy: Slug | None = Field(None, description="a serving strategy of the surface (see serving/README)")


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Slug = Field(description="unique; hashed with the user to assign variants, and recorded in events")
    description: str = Field("", max_length=500)
    surface: Surface
    variants: list[Variant] = Field(min_length=2, max_length=MAX_VARIANTS,
                                    description="in bucket order; each names a model_version or a strategy")


class ExperimentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    description: str
    surface: Surface
    status: ExperimentStatus
    variants: list[Variant]
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


def _check_variants(surface: Surface, variants: list[Variant]) -> None:
    problems = []
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        if variant.name in seen:
            problems.append({"field": f"variants.{index}.name",
                             "reason": f"variant '{variant.name}' is repeated"})
        seen.add(variant.name)
        if variant.model_version is None and variant.strategy is None and surface != Surface.search:
            problems.append({"field": f"variants.{index}.model_version",
                             "reason": "give a model_version or a strategy"})
        elif variant.strategy not in STRATEGIES[surface] and (variant.strategy or surface == Surface.search):
            problems.append({"field": f"variants.{index}.strategy",
                             "reason": f"{surface.value} strategies are {', '.join(STRATEGIES[surface])}"})
    total = sum(variant.share for variant in variants)
    if total != 1:
        problems.append({"field": "variants", "reason": f"the shares sum to {total}, not 1"})
    if problems:
        raise Unprocessable("the variants are not a valid split of the traffic", errors=problems)


def create_experiment(session: Session, data: ExperimentIn, actor_user_id: uuid.UUID | None) -> ExperimentOut:
    """A draft experiment; 422 naming the variant field at fault, 409 when the key is taken."""
    _check_variants(data.surface, data.variants)
    experiment = Experiment(key=data.key, description=data.description, surface=data.surface.value,
                            status=ExperimentStatus.draft.value, created_by=actor_user_id,
                            variants=[variant.model_dump(mode="json") for variant in data.variants])
    try:
        with session.begin_nested():  # a savepoint: the caller's transaction survives a taken key
            session.add(experiment)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an experiment with key '{data.key}' exists", field="key") from exc
    return ExperimentOut.model_validate(experiment)


def list_experiments(session: Session, *, surface: Surface | None = None,
                     status: ExperimentStatus | None = None) -> list[ExperimentOut]:
    query = select(Experiment).order_by(Experiment.created_at.desc(), Experiment.key)
    if surface is not None:
        query = query.where(Experiment.surface == surface.value)
    if status is not None:
        query = query.where(Experiment.status == status.value)
    return [ExperimentOut.model_validate(experiment) for experiment in session.scalars(query)]


def running_experiments(session: Session) -> list[ExperimentOut]:
    """What the serving processes assign users to (at most one per surface)."""
    return list_experiments(session, status=ExperimentStatus.running)


def _get(session: Session, experiment_id: uuid.UUID) -> Experiment:
    experiment = session.get(Experiment, experiment_id, with_for_update=True)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found", field="experiment_id")
    return experiment


def find_experiment(session: Session, key: str) -> ExperimentOut:
    experiment = session.scalar(select(Experiment).where(Experiment.key == key))
    if experiment is None:
        raise NotFound(f"no experiment has key '{key}'", field="key")
    return ExperimentOut.model_validate(experiment)


def get_experiment(session: Session, experiment_id: uuid.UUID) -> ExperimentOut:
    return ExperimentOut.model_validate(_get(session, experiment_id))


def start_experiment(session: Session, experiment_id: uuid.UUID) -> ExperimentOut:
    """draft -> running; 409 naming `surface` when another experiment runs there."""
    experiment = _get(session, experiment_id)
    if experiment.status != ExperimentStatus.draft.value:
        raise Conflict(f"only a draft experiment can start; this one is {experiment.status}", field="status")
    surface = experiment.surface
    try:
        with session.begin_nested():
            experiment.status, experiment.started_at = ExperimentStatus.running.value, datetime.now(UTC)
            session.flush()
    except IntegrityError as exc:
        running = session.scalar(select(Experiment.key).where(
            Experiment.surface == surface, Experiment.status == ExperimentStatus.running.value))
        raise Conflict(f"experiment '{running}' is already running on {surface}; stop it first",
                       field="surface") from exc
    return ExperimentOut.model_validate(experiment)


def stop_experiment(session: Session, experiment_id: uuid.UUID) -> ExperimentOut:
    """running -> stopped (final)."""
    experiment = _get(session, experiment_id)
    if experiment.status != ExperimentStatus.running.value:
        raise Conflict(f"only a running experiment can stop; this one is {experiment.status}", field="status")
    experiment.status, experiment.stopped_at = ExperimentStatus.stopped.value, datetime.now(UTC)
    session.flush()
    return ExperimentOut.model_validate(experiment)
