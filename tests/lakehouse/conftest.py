"""Lakehouse fixtures: one embedded Sail session for the whole test session, a fresh lakehouse
root (and empty database) per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _point_lakehouse_at(root: Path) -> None:
    from pipelines.settings import lakehouse_settings

    os.environ["MARKETLAKE_LAKEHOUSE_URI"] = str(root)
    lakehouse_settings.cache_clear()


@pytest.fixture(scope="session")
def spark():
    from pipelines.engine import get_spark

    return get_spark()


@pytest.fixture
def lakehouse(db, spark, tmp_path) -> Iterator[Path]:
    """An empty database and an empty lakehouse root; yields the root."""
    root = tmp_path / "lakehouse"
    previous = os.environ.get("MARKETLAKE_LAKEHOUSE_URI")
    _point_lakehouse_at(root)
    yield root
    if previous is None:
        os.environ.pop("MARKETLAKE_LAKEHOUSE_URI", None)
    else:
        os.environ["MARKETLAKE_LAKEHOUSE_URI"] = previous
    from pipelines.settings import lakehouse_settings

    lakehouse_settings.cache_clear()
