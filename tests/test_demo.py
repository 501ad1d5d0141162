"""`marketlake demo --no-serve` does everything the demo does (including the lakehouse and a trained,
registered recommender for the recommendation API), then exits 0 with a summary."""

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.processes import free_port


@pytest.mark.slow
def test_demo_without_serving_loads_simulates_trains_and_summarises(db, tmp_path, monkeypatch):
    import mlflow

    from models import tracking
    from orchestration.demo import marketplace_counts
    from pipelines.settings import lakehouse_settings

    monkeypatch.setenv("MARKETLAKE_LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MARKETLAKE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    lakehouse_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["demo", "--no-serve", "--scale", "tiny", "--shoppers", "2", "--simulate-seconds", "3",
                  "--port", str(free_port())],
        )
    finally:
        lakehouse_settings.cache_clear()
    assert result.exit_code == 0, result.output
    counts = marketplace_counts()
    assert all(counts[table] > 0 for table in ("tenants", "products", "orders", "shopper_events"))
    for label in ("tenants", "products", "orders", "shopper_events", "simulation:", "recommender:"):
        assert label in result.output
    client = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(), registry_uri=tracking.tracking_uri())
    champion = client.get_model_version_by_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION)
    assert client.get_run(champion.run_id).data.params["model"] in {"als", "item2vec"}
