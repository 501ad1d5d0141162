"""A/B experiments on the serving surfaces, for platform operators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from transactional.api.deps import CurrentUser, PlatformAdmin, SessionDep
from transactional.models import ExperimentStatus, Surface
from transactional.services import experiments
from transactional.services.experiments import ExperimentIn, ExperimentOut

router = APIRouter(prefix="/v1/admin/experiments", tags=["experiments"], dependencies=[PlatformAdmin])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Define an experiment (a draft until started)",
             description="Variants split the surface's users by `share` (summing to 1); each serves a"
                         " `model_version` or a `strategy`. 422 names the variant field at fault; 409 `key`"
                         " when the key is taken.")
def create_experiment(body: ExperimentIn, session: SessionDep, principal: CurrentUser) -> ExperimentOut:
    return experiments.create_experiment(session, body, principal.user_id)


@router.get("", summary="Experiments, newest first")
def list_experiments(
    session: SessionDep,
    surface: Annotated[Surface | None, Query()] = None,
    status_filter: Annotated[ExperimentStatus | None, Query(alias="status")] = None,
) -> list[ExperimentOut]:
    return experiments.list_experiments(session, surface=surface, status=status_filter)


@router.get("/{experiment_id}", summary="One experiment")
def get_experiment(experiment_id: uuid.UUID, session: SessionDep) -> ExperimentOut:
    return experiments.get_experiment(session, experiment_id)


@router.post("/{experiment_id}/start", summary="Start assigning users (one running experiment per surface)",
             description="Serving processes pick it up within their refresh period. 409 `surface` when"
                         " another experiment runs on the surface, 409 `status` unless it is a draft.")
def start_experiment(experiment_id: uuid.UUID, session: SessionDep) -> ExperimentOut:
    return experiments.start_experiment(session, experiment_id)


@router.post("/{experiment_id}/stop", summary="Stop the experiment (final: a new run is a new experiment)")
def stop_experiment(experiment_id: uuid.UUID, session: SessionDep) -> ExperimentOut:
    return experiments.stop_experiment(session, experiment_id)
