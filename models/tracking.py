"""MLflow tracking and model registry.

Runs go to a SQLite store under MARKETLAKE_HOME (`MLFLOW_TRACKING_URI` overrides it), artifacts next to
it. An evaluation is one parent run (protocol, data version, the evaluation table) with one nested run
per model (its tuned hyper-parameters per split, metrics per split and averaged, the fitted model,
item embeddings and a FAISS index with its measured recall). Registered versions carry their
validation figure; a new version takes the `champion` alias only when it beats the champion on it,
otherwise it becomes the `challenger`. A model refitted for serving is one run of kind `training`
(`log_training`), to which `log_index` adds its FAISS index once built and checked."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.ann import VectorIndex, build_index
from models.data import Interactions
from models.experiment import ModelRun
from transactional.config import get_settings

EXPERIMENT = "marketlake-models"
# The recommender the pipeline trains and registers, and serving loads (its `champion` version).
REGISTERED_MODEL = "marketlake-recommender"
VALIDATION_TAG = "validation_ndcg_at_10"
CHAMPION, CHALLENGER = "champion", "challenger"


def mlflow_home() -> Path:
    path = get_settings().home_dir / "mlflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_home() / 'mlflow.db'}"


def _mlflow():
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def experiment_id(name: str = EXPERIMENT) -> str:
    """The experiment's id, creating it with artifacts beside the store (not in the working directory)."""
    mlflow = _mlflow()
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    artifacts = os.environ.get("MARKETLAKE_MLFLOW_ARTIFACTS") or (mlflow_home() / "artifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=artifacts)


def metric_name(name: str) -> str:
    """MLflow names allow no '@': ndcg@10 -> ndcg_at_10."""
    return re.sub(r"[^\w./ -]", "_", name.replace("@", "_at_"))


@dataclass(frozen=True)
class LoggedEvaluation:
    parent_run_id: str
    model_run_ids: dict[str, str]


def log_evaluation(
    runs: Sequence[ModelRun],
    evaluation_table: pd.DataFrame,
    context: Mapping[str, object],
    k: int = 10,
    experiment: str = EXPERIMENT,
    encoded: Interactions | None = None,
) -> LoggedEvaluation:
    """Log one evaluation; `context` holds the protocol settings and data versions (input file hash,
    Delta table versions...), recorded as parameters and tags of every run. `encoded` is any split of
    the data the runs were fitted on: its user and item ids are logged beside the embeddings, which
    a server needs to map vector rows back to products and users."""
    mlflow = _mlflow()
    context_params = {key: str(value) for key, value in context.items()}
    by_model: dict[str, list[ModelRun]] = {}
    for model_run in runs:
        by_model.setdefault(model_run.model_name, []).append(model_run)
    experiment_key = experiment_id(experiment)
    with mlflow.start_run(
        experiment_id=experiment_key,
        run_name=f"evaluate {context.get('dataset', '')} {context.get('protocol', '')}".strip(),
        tags={"marketlake.kind": "evaluation", **context_params},
    ) as parent:
        mlflow.log_params(context_params)
        _log_table(mlflow, evaluation_table)
        child_ids = {
            name: _log_model(mlflow, experiment_key, name, model_runs, context_params, k, encoded)
            for name, model_runs in by_model.items()
        }
    return LoggedEvaluation(parent.info.run_id, child_ids)


def _log_table(mlflow, evaluation_table: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "evaluation.csv"
        evaluation_table.to_csv(path, index=False)
        mlflow.log_artifact(str(path))
    mlflow.log_text(evaluation_table.to_string(index=False, float_format="{:.4f}".format), "evaluation.txt")


def _log_model(
    mlflow,
    experiment_key: str,
    name: str,
    model_runs: Sequence[ModelRun],
    context: Mapping[str, str],
    k: int,
    encoded: Interactions | None,
    kind: str = "model",
    index: bool = True,
) -> str:
    final = model_runs[-1]
    with mlflow.start_run(
        experiment_id=experiment_key,
        run_name=name,
        nested=True,
        tags={"marketlake.kind": kind, "model": name, "trained_on_split": final.split, **context},
    ) as child:
        mlflow.log_params(
            {
                **context,
                "model": name,
                **{f"{run.split}/{key}": value for run in model_runs for key, value in run.params.items()},
            }
        )
        metrics = {
            f"{run.split}/{metric_name(key)}": value
            for run in model_runs
            for key, value in run.metrics.items()
        }
        means = pd.DataFrame([run.metrics for run in model_runs]).mean()
        metrics.update({metric_name(key): float(value) for key, value in means.items()})
        metrics[VALIDATION_TAG] = float(np.mean([run.validation for run in model_runs]))
        metrics["fit_seconds"] = float(np.sum([run.fit_seconds for run in model_runs]))
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as directory:
            folder = Path(directory)
            with open(folder / "model.pkl", "wb") as stream:
                pickle.dump(final.model, stream)
            mlflow.log_artifact(str(folder / "model.pkl"), "model")
            vectors = final.model.item_vectors()
            if vectors is not None:
                np.save(folder / "item_vectors.npy", vectors)
                mlflow.log_artifact(str(folder / "item_vectors.npy"), "embeddings")
                if encoded is not None:
                    for ids_name, ids in (("item_ids", encoded.item_ids), ("user_ids", encoded.user_ids)):
                        np.save(folder / f"{ids_name}.npy", np.asarray(ids).astype(str))
                        mlflow.log_artifact(str(folder / f"{ids_name}.npy"), "embeddings")
                if index:
                    _log_index(mlflow, build_index(vectors, k=k), k)
    return child.info.run_id


def _log_index(mlflow, index: VectorIndex, k: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        mlflow.log_artifact(str(index.save(Path(directory) / "items.faiss")), "faiss")
    mlflow.log_params({"faiss_kind": index.kind, "faiss_search_effort": index.search_effort})
    mlflow.log_metric(f"faiss_recall_at_{k}", index.recall)


def log_training(
    model_run: ModelRun,
    encoded: Interactions,
    context: Mapping[str, object],
    k: int = 10,
    experiment: str = EXPERIMENT,
) -> str:
    """Log a model fitted for serving as one run of kind `training`: `context` (data versions, the
    evaluation it was chosen by) as parameters, its validation figure, the model, its embeddings
    and the ids of their rows. Its FAISS index is added by `log_index` once built and checked."""
    mlflow = _mlflow()
    context_params = {key: str(value) for key, value in context.items()}
    return _log_model(
        mlflow,
        experiment_id(experiment),
        model_run.model_name,
        [model_run],
        context_params,
        k,
        encoded,
        kind="training",
        index=False,
    )


def log_index(run_id: str, index: VectorIndex, k: int = 10) -> None:
    """Add a FAISS index over a run's item vectors to that run (faiss/items.faiss, with its kind,
    search effort and recall@k against exact search)."""
    mlflow = _mlflow()
    with mlflow.start_run(run_id=run_id):
        _log_index(mlflow, index, k)


def load_model(run_id: str):
    """The fitted model a model run logged."""
    mlflow = _mlflow()
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model/model.pkl")
    with open(path, "rb") as stream:
        return pickle.load(stream)


@dataclass(frozen=True)
class Registration:
    version: str
    alias: str
    champion_validation: float | None


def register(registered_model: str, run_id: str, validation: float) -> Registration:
    """Register the run's model; it becomes `champion` only when its validation figure beats the
    current champion's (or there is none), otherwise `challenger`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _mlflow()
    client = MlflowClient()
    try:
        client.create_registered_model(registered_model)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(
        registered_model, source=source, run_id=run_id, tags={VALIDATION_TAG: repr(float(validation))}
    )
    try:
        champion = client.get_model_version_by_alias(registered_model, CHAMPION)
        champion_validation = float(champion.tags[VALIDATION_TAG])
    except MlflowException:
        champion_validation = None
    alias = CHAMPION if champion_validation is None or validation > champion_validation else CHALLENGER
    client.set_registered_model_alias(registered_model, alias, version.version)
    return Registration(str(version.version), alias, champion_validation)
