"""The training assets downstream of gold materialise in-process on small generated gold tables:
the first run registers a vector model as champion with the Delta versions it learnt from, the FAISS
recall check passes, and a second run on a new version of identical data (so no better) becomes the
challenger while the champion stays. item2vec learns from gold.sessions, within each split's
training part only."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from deltalake import write_deltalake

from models.synthetic import marketplace_sessions
from pipelines.gold import EVENT_WEIGHTS

VECTOR_MODELS = {"als", "item2vec"}
MODELS = ["item_pop", "als", "item2vec", "ease"]


GOLD_TABLES = ("interactions", "item_popularity", "sessions")


def gold_sessions(events: pd.DataFrame) -> pd.DataFrame:
    """gold.sessions' training columns as `pipelines.gold.transform_sessions` builds them: each
    session's items in time order, a consecutive repeat of an item kept once."""
    ordered = events.sort_values(["session_id", "at"], kind="stable")
    repeat = ordered["session_id"].eq(ordered["session_id"].shift()) & ordered["item_id"].eq(
        ordered["item_id"].shift()
    )
    steps = ordered[~repeat].groupby("session_id", sort=False)
    return pd.DataFrame(
        {
            "user_key": steps["user_id"].first(),
            "started_at": steps["at"].min(),
            "ended_at": steps["at"].max(),
            "items": steps["item_id"].agg(list),
            "item_events": steps["event_type"].agg(list),
        }
    ).reset_index()


def gold_frames() -> dict[str, pd.DataFrame]:
    """gold.interactions, gold.item_popularity and gold.sessions (the columns training reads) from
    one generated log of browsing sessions."""
    events = marketplace_sessions(1_200, 200, 150, n_categories=8, n_tenants=4, random_state=3)
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
    return {"interactions": interactions, "item_popularity": popularity, "sessions": gold_sessions(events)}


@pytest.fixture
def gold_lakehouse(tmp_path, monkeypatch):
    """Gold tables in a private lakehouse, and a private MLflow store."""
    from pipelines.settings import lakehouse_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MARKETLAKE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MARKETLAKE_LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    lakehouse_settings.cache_clear()
    frames = gold_frames()
    for name, frame in frames.items():
        write_deltalake(str(tmp_path / "lakehouse" / "gold" / name), frame)
    yield tmp_path / "lakehouse", frames["interactions"]
    lakehouse_settings.cache_clear()


def test_training_data_learns_only_from_session_steps_a_shopper_chose(tmp_path, monkeypatch):
    from orchestration import training
    from pipelines.settings import lakehouse_settings

    monkeypatch.setenv("MARKETLAKE_LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    lakehouse_settings.cache_clear()
    at = pd.Timestamp("2026-01-01", tz="UTC")
    items = ["x", "y", "z"]
    frames = {
        "interactions": pd.DataFrame(
            {"user_key": "u", "product_id": items, "tenant_id": "t", "weight": 1.0, "last_interaction_at": at}
        ),
        "item_popularity": pd.DataFrame({"product_id": items, "category_id": "c", "window_days": 30}),
        # y was viewed elsewhere, but here only shown; x was taken out of the cart again.
        "sessions": pd.DataFrame(
            {
                "session_id": ["s1", "s2"],
                "user_key": "u",
                "started_at": at,
                "items": [["x", "y", "z", "x"], []],
                "item_events": [["view", "impression", "add_to_cart", "remove_from_cart"], []],
            }
        ),
    }
    for name, frame in frames.items():
        write_deltalake(str(tmp_path / "lakehouse" / "gold" / name), frame)
    try:
        data = training.training_data(training.current_versions())
    finally:
        lakehouse_settings.cache_clear()
    assert [list(data.item_ids[session]) for session in data.session_sequences()] == [["x", "z"]]
    assert len(data) == 3


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
        assert all(run.data.params[f"data_version_gold.{name}"] == "0" for name in GOLD_TABLES)
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
