"""The training assets downstream of gold materialise in-process on small generated gold tables:
the first run registers a vector model as champion with the Delta versions it learnt from, the FAISS
recall check passes, and a second run on a new version of identical data (so no better) becomes the
challenger while the champion stays."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from deltalake import write_deltalake

from models.synthetic import marketplace_interactions
from pipelines.gold import EVENT_WEIGHTS

VECTOR_MODELS = {"als", "item2vec"}
MODELS = ["item_pop", "als", "item2vec", "ease"]


def gold_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """gold.interactions and gold.item_popularity (the columns training reads) from a generated log."""
    events = marketplace_interactions(4_000, 200, 150, n_categories=8, n_tenants=4, random_state=3)
    events["weight"] = events["event_type"].map(EVENT_WEIGHTS)
    events["at"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    interactions = (
        events.groupby(["user_id", "item_id"], as_index=False)
        .agg(tenant_id=("tenant_id", "first"), weight=("weight", "sum"), last_interaction_at=("at", "max"))
        .rename(columns={"user_id": "user_key", "item_id": "product_id"})
    )
    popularity = (
        events.groupby("item_id", as_index=False)
        .agg(category_id=("category", "first"), unique_users=("user_id", "nunique"))
        .rename(columns={"item_id": "product_id"})
        .assign(window_days=30)
    )
    return interactions, popularity


@pytest.fixture
def gold_lakehouse(tmp_path, monkeypatch):
    """Gold tables in a private lakehouse, and a private MLflow store."""
    from pipelines.settings import lakehouse_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MARKETLAKE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MARKETLAKE_LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    lakehouse_settings.cache_clear()
    interactions, popularity = gold_frames()
    write_deltalake(str(tmp_path / "lakehouse" / "gold" / "interactions"), interactions)
    write_deltalake(str(tmp_path / "lakehouse" / "gold" / "item_popularity"), popularity)
    yield tmp_path / "lakehouse", interactions
    lakehouse_settings.cache_clear()


def materialise(instance, models: list[str], raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    from orchestration import training

    return dg.materialize(
        training.defs.assets,
        instance=instance,
        run_config={"ops": {"ml__model_evaluation": {"config": {"models": models}}}},
        raise_on_error=raise_on_error,
    )


def metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    event = next(
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == key
    )
    return {name: value.value for name, value in event.materialization.metadata.items()}


@pytest.mark.slow
def test_training_registers_a_vector_champion_then_an_equal_rerun_becomes_challenger(gold_lakehouse):
    import mlflow

    from models import tracking

    lakehouse, interactions = gold_lakehouse
    client = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(), registry_uri=tracking.tracking_uri())
    with dg.instance_for_test() as instance:
        first = materialise(instance, MODELS)
        assert first.success
        registered = metadata(first, "ml/registered_recommender")
        assert registered["alias"] == tracking.CHAMPION and registered["model"] in VECTOR_MODELS
        [check] = first.get_asset_check_evaluations()
        assert check.check_name == "faiss_recall" and check.passed
        assert check.metadata["recall_at_10"].value >= 0.95

        champion = client.get_model_version_by_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION)
        run = client.get_run(champion.run_id)
        assert run.data.params["data_version_gold.interactions"] == "0"
        assert run.data.params["data_version_gold.item_popularity"] == "0"
        assert run.data.tags["marketlake.kind"] == "training" and run.data.params["model"] in VECTOR_MODELS
        artifacts = Path(
            mlflow.artifacts.download_artifacts(run_id=champion.run_id, tracking_uri=tracking.tracking_uri())
        )
        item_ids = np.load(artifacts / "embeddings" / "item_ids.npy")
        user_ids = np.load(artifacts / "embeddings" / "user_ids.npy")
        vectors = np.load(artifacts / "embeddings" / "item_vectors.npy")
        assert set(item_ids) == set(interactions["product_id"]) and len(vectors) == len(item_ids)
        assert set(user_ids) == set(interactions["user_key"])
        assert (artifacts / "faiss" / "items.faiss").exists() and (artifacts / "model" / "model.pkl").exists()
        assert run.data.params["faiss_kind"] == "flat"

        # The whole evaluation table is kept, every model and the blend.
        evaluation_run = run.data.params["evaluation_run"]
        table = pd.read_csv(
            mlflow.artifacts.download_artifacts(
                run_id=evaluation_run, artifact_path="evaluation.csv", tracking_uri=tracking.tracking_uri()
            )
        )
        assert set(table["model"]) == {"item_pop", "als", "item2vec", "ease", "blend"}
        assert client.get_run(evaluation_run).data.params["data_version_gold.interactions"] == "0"

        # A new Delta version holding the same rows: an equally good model, not a better one.
        write_deltalake(str(lakehouse / "gold" / "interactions"), interactions, mode="overwrite")
        second = materialise(instance, MODELS)
        assert second.success
    again = metadata(second, "ml/registered_recommender")
    assert again["alias"] == tracking.CHALLENGER and again["version"] != registered["version"]
    assert again["champion_validation_before"] == pytest.approx(registered["validation_ndcg"])
    challenger = client.get_model_version_by_alias(tracking.REGISTERED_MODEL, tracking.CHALLENGER)
    assert client.get_run(challenger.run_id).data.params["data_version_gold.interactions"] == "1"
    assert (
        client.get_model_version_by_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION).version
        == champion.version
    )


@pytest.mark.slow
def test_an_index_failing_its_recall_check_is_not_registered(gold_lakehouse, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    from models import tracking
    from orchestration import training

    monkeypatch.setattr(training, "MIN_RECALL", 1.01)  # no index can reach it
    with dg.instance_for_test() as instance:
        result = materialise(instance, ["item_pop", "als"], raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    materialised = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert "ml/item_index" in materialised and "ml/registered_recommender" not in materialised
    client = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(), registry_uri=tracking.tracking_uri())
    with pytest.raises(MlflowException):
        client.get_registered_model(tracking.REGISTERED_MODEL)
