"""The model-comparison notebook runs headless against a fresh tracking store, so it never rots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_models.ipynb"


@pytest.mark.slow
def test_compare_models_notebook_executes_and_plots(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MARKETLAKE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent.parent)}},
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 2
    tables = "".join(output.get("data", {}).get("text/plain", "") for output in outputs)
    assert "ease" in tables and "ndcg_at_10" in tables
    assert os.path.exists(tmp_path / "mlflow.db")
