"""MLflow logging of evaluations, the champion/challenger promotion rule, and FAISS recall."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from models.ann import build_index, choose_kind, exact_index, recall_at_k
from models.data import from_frame
from models.experiment import run, table
from models.protocols import leave_last_out
from models.synthetic import marketplace_interactions


@pytest.fixture(scope="module")
def tracking_store(tmp_path_factory):
    """A private MLflow store for this module (creating one takes a while, so it is shared)."""
    folder = tmp_path_factory.mktemp("mlflow")
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MARKETLAKE_MLFLOW_ARTIFACTS")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MARKETLAKE_MLFLOW_ARTIFACTS"] = (folder / "artifacts").as_uri()
    yield folder
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def evaluated():
    data = from_frame(marketplace_interactions(3_000, 150, 120, random_state=11))
    runs = run([leave_last_out(data)], ["item_pop", "als"])
    return data, runs, table(runs)


# ---------------------------------------------------------------- FAISS


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_reaches_target_recall_against_exact_search(kind):
    rng = np.random.default_rng(0)
    items = rng.normal(size=(6_000, 32)).astype(np.float32)
    queries = rng.normal(size=(300, 32)).astype(np.float32)
    index = build_index(items, queries, k=10, kind=kind, target_recall=0.95)
    exact = exact_index(items).search(queries, 10)[1]
    assert index.kind == kind
    assert recall_at_k(index.search(queries, 10), exact) >= 0.95
    assert index.recall >= 0.95


def test_index_kind_follows_catalogue_size():
    assert choose_kind(500) == "flat"
    assert choose_kind(50_000) == "hnsw"
    assert choose_kind(5_000_000) == "ivf"
    small = build_index(np.eye(4, dtype=np.float32))
    assert small.kind == "flat" and small.search(np.eye(4, dtype=np.float32), 1).ravel().tolist() == [
        0,
        1,
        2,
        3,
    ]


# ---------------------------------------------------------------- MLflow


def test_evaluation_is_logged_with_data_version_metrics_and_artifacts(tracking_store, evaluated):
    import mlflow

    from models import tracking

    data, runs, evaluation = evaluated
    context = {
        "protocol": "leave-last-out",
        "dataset": "synthetic",
        "data_sha256": "abc123",
        "data_fingerprint": data.fingerprint(),
    }
    logged = tracking.log_evaluation(runs, evaluation, context)
    client = mlflow.MlflowClient()
    parent = client.get_run(logged.parent_run_id)
    assert parent.data.params["data_sha256"] == "abc123"
    assert {artifact.path for artifact in client.list_artifacts(logged.parent_run_id)} >= {
        "evaluation.csv",
        "evaluation.txt",
    }
    als = client.get_run(logged.model_run_ids["als"])
    assert als.data.tags["data_fingerprint"] == data.fingerprint()
    assert "leave-last-out/factors" in als.data.params
    assert als.data.metrics["ndcg_at_10"] == pytest.approx(
        evaluation.set_index("model").loc["als", "ndcg@10"]
    )
    assert als.data.metrics["faiss_recall_at_10"] >= 0.95
    folders = {artifact.path for artifact in client.list_artifacts(logged.model_run_ids["als"])}
    assert folders >= {"model", "embeddings", "faiss"}
    restored = tracking.load_model(logged.model_run_ids["als"])
    assert np.allclose(restored.item_vectors(), runs[1].model.item_vectors())


def test_a_new_version_becomes_champion_only_when_it_beats_the_champion(tracking_store, evaluated):
    from mlflow import MlflowClient

    from models import tracking

    _, runs, evaluation = evaluated
    run_id = tracking.log_evaluation(runs, evaluation, {"dataset": "synthetic"}).model_run_ids["als"]
    name = "promotion-rule"
    first = tracking.register(name, run_id, validation=0.30)
    worse = tracking.register(name, run_id, validation=0.25)
    equal = tracking.register(name, run_id, validation=0.30)
    better = tracking.register(name, run_id, validation=0.31)
    assert (first.alias, worse.alias, equal.alias, better.alias) == (
        "champion",
        "challenger",
        "challenger",
        "champion",
    )
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(name, "champion").version) == better.version
    assert str(client.get_model_version_by_alias(name, "challenger").version) == equal.version
    assert better.champion_validation == pytest.approx(0.30)


def test_evaluate_command_logs_and_registers(tracking_store, tmp_path):
    import mlflow

    from orchestration.cli import app

    events = tmp_path / "events.csv"
    marketplace_interactions(2_000, 100, 80, random_state=12).to_csv(events, index=False)
    result = CliRunner().invoke(
        app,
        ["evaluate", "-i", str(events), "--models", "item_pop,ease", "--register-as", "cli-recommender",
         "--data-version", "silver.events=12"],
    )
    assert result.exit_code == 0, result.output
    version = mlflow.MlflowClient().get_model_version_by_alias("cli-recommender", "champion")
    logged = mlflow.get_run(version.run_id)
    assert logged.data.params["data_sha256"] == hashlib.sha256(events.read_bytes()).hexdigest()
    assert logged.data.params["model"] in {"item_pop", "ease", "blend"}
    assert logged.data.params["data_version_silver.events"] == "12"
    runs = mlflow.search_runs(experiment_names=["marketlake-models"], filter_string="tags.model = 'ease'")
    assert len(runs) == 1 and runs["tags.mlflow.parentRunId"].notna().all()
