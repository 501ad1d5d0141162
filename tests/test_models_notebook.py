"""The notebooks run headless, so they never rot: model comparison against a fresh tracking store,
lakehouse exploration on the tiny generated marketplace taken through bronze, silver and gold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str) -> list:
    """Run a notebook in a fresh kernel from the repository root; its outputs, none an error."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS.parent)}},
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    return outputs


def images(outputs: list) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs)


def text(outputs: list) -> str:
    return "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "") for output in outputs)


@pytest.mark.slow
def test_compare_models_notebook_executes_and_plots(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MARKETLAKE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    outputs = execute("compare_models.ipynb")
    assert images(outputs) >= 2
    assert "ease" in text(outputs) and "ndcg_at_10" in text(outputs)
    assert os.path.exists(tmp_path / "mlflow.db")


@pytest.mark.slow
def test_explore_lakehouse_notebook_counts_time_travels_and_plots(migrated_database, tmp_path, monkeypatch):
    from pipelines import gold
    from pipelines.engine import get_spark
    from pipelines.settings import lakehouse_settings
    from tests.factories_analytics import run_lakehouse, tiny_marketplace

    monkeypatch.setenv("MARKETLAKE_LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    try:
        tiny_marketplace(tmp_path / "lakehouse")
        run_lakehouse()
        gold.build_gold(get_spark())  # a second version of every gold table, to travel back from
        outputs = execute("explore_lakehouse.ipynb")
    finally:
        lakehouse_settings.cache_clear()
    printed = text(outputs)
    assert images(outputs) >= 4
    for table in ("bronze.shopper_events", "silver.events", "gold.interactions", "gold.seller_daily"):
        assert table in printed
    assert "version 0:" in printed and "version 1:" in printed
    assert "order_lines_per_view" in printed
