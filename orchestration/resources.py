"""Resources of the Dagster definitions, chosen by MARKETLAKE_ENV (local | prod).

local: the embedded PostgreSQL server and lakehouse under MARKETLAKE_HOME, notifications kept in
a file there. prod: every connection and secret comes from the environment through `dg.EnvVar`
(read when a run starts, never stored in the definitions).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import dagster as dg
import httpx
from dagster_dbt import DbtCliResource, DbtProject
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from transactional.config import get_settings
from transactional.db import owner_engine, sqlalchemy_url
from transactional.embedded_pg import database_url
from transactional.observability import log

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"


def environment() -> str:
    return get_settings().env


class PlatformDatabase(dg.ConfigurableResource):
    """The platform's PostgreSQL as its owner (the warehouse load writes `analytics`).
    Without a URL: DATABASE_URL or the embedded server, as everywhere else."""

    url: str | None = None

    def engine(self) -> Engine:
        return _engine(self.url) if self.url else owner_engine()


@cache
def _engine(url: str) -> Engine:
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True)


def dbt_environment(url: str | None = None) -> dict[str, str]:
    """The profile's MARKETLAKE_DBT_* settings for a database URL (default: the platform's)."""
    parsed = make_url(url or database_url(get_settings()))
    return {
        "MARKETLAKE_DBT_HOST": parsed.host or "127.0.0.1",
        "MARKETLAKE_DBT_PORT": str(parsed.port or 5432),
        "MARKETLAKE_DBT_USER": parsed.username or "postgres",
        "MARKETLAKE_DBT_PASSWORD": parsed.password or "",
        "MARKETLAKE_DBT_DBNAME": parsed.database or "marketlake",
    }


def _manifest_is_stale(project: DbtProject) -> bool:
    """A manifest older than any file of the project would load assets and tests that are gone."""
    if not project.manifest_path.exists():
        return True
    parsed_at = project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml",
               *(path for folder in ("models", "macros", "tests", "seeds", "snapshots")
                 for path in (DBT_PROJECT_DIR / folder).rglob("*") if path.is_file())]
    return any(path.stat().st_mtime > parsed_at for path in sources)


def dbt_project() -> DbtProject:
    """The dbt project, its manifest (re)parsed when missing or older than the project's files
    (`dbt parse` needs no database)."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
                         target="prod" if environment() == "prod" else "local")
    if _manifest_is_stale(project):
        DbtCliResource(project_dir=project, dbt_executable=_dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path).wait()
    return project


def _dbt_executable() -> str:
    """The venv's dbt, also when the venv is not on PATH (`.venv/bin/pytest`, `uv run`)."""
    beside_python = Path(sys.executable).with_name("dbt")
    return str(beside_python) if beside_python.exists() else "dbt"


def dbt_cli() -> DbtCliResource:
    """dbt as a subprocess. Locally the profile is pointed at the platform's database here; in
    prod the MARKETLAKE_DBT_* variables are the deployment's own."""
    if environment() != "prod":
        os.environ.update(dbt_environment())
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=_dbt_executable())


class Notifier(dg.ConfigurableResource):
    """Where operational notifications go: a JSON-lines file (local) and/or a webhook (prod)."""

    path: str | None = None
    webhook_url: str | None = None

    def notify(self, kind: str, **details) -> dict:
        event = {"kind": kind, "at": datetime.now(UTC).isoformat(), **details}
        log.warning("notification", **event)
        if self.path:
            with Path(self.path).open("a") as file:
                file.write(json.dumps(event, default=str) + "\n")
        if self.webhook_url:
            httpx.post(self.webhook_url, json=event, timeout=10).raise_for_status()
        return event


def notifications_path() -> Path:
    return get_settings().home_dir / "notifications.jsonl"


def resources() -> dict[str, object]:
    if environment() == "prod":
        return {
            "database": PlatformDatabase(url=dg.EnvVar("DATABASE_URL")),
            "dbt": dbt_cli(),
            "notifier": Notifier(webhook_url=dg.EnvVar("MARKETLAKE_ALERT_WEBHOOK_URL")),
        }
    return {
        "database": PlatformDatabase(),
        "dbt": dbt_cli(),
        "notifier": Notifier(path=str(notifications_path())),
    }


# Transient failures (a busy database, a restarted Spark server) get three more tries, 15 s, 30 s
# and 60 s later, jittered so parallel steps do not retry in lockstep.
RETRY = dg.RetryPolicy(max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def analytics_start_date() -> str:
    """First day of the daily partitions (MARKETLAKE_ANALYTICS_START_DATE; generated histories
    reach back a year before 2026-11-02)."""
    return os.environ.get("MARKETLAKE_ANALYTICS_START_DATE", "2025-10-01")


# Dated data (shopper events, searches) is loaded and backfilled one UTC day at a time; one run
# may cover a range of days (a backfill or a sensor run after a burst of late events).
DAILY = dg.DailyPartitionsDefinition(start_date=analytics_start_date(), end_offset=1)


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME under MARKETLAKE_HOME: runs, events and schedules in local SQLite files, or in
    PostgreSQL (MARKETLAKE_DAGSTER_DATABASE_URL, via dagster-postgres) when MARKETLAKE_ENV=prod.
    Telemetry stays off: the platform sends nothing out."""
    home = get_settings().home_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    storage = ("storage:\n  postgres:\n    postgres_url:\n      env: MARKETLAKE_DAGSTER_DATABASE_URL\n"
               if environment() == "prod" else "")
    (home / "dagster.yaml").write_text(f"telemetry:\n  enabled: false\n{storage}")
    return home
