"""Shared benchmark plumbing: machine facts, a real API server in its own process, pgbench.

Benchmarks print one JSON document each; figures are reported as ratios against a baseline
measured in the same run, with the machine noted."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from orchestration.processes import Service, free_port, running

from transactional.config import get_settings
from transactional.embedded_pg import EmbeddedPostgres, database_url

RESULTS_DIR = Path(__file__).with_name("results")


def machine() -> dict[str, object]:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "cpu": cpu,
            "python": platform.python_version(), "os": platform.platform()}


@contextmanager
def api_server(app: str = "transactional.api.app:create_app", workers: int = 1) -> Iterator[str]:
    """Serve `app` (a factory) with uvicorn in a separate process; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with running([Service(command, f"{base_url}/healthz", env={"MARKETLAKE_LOG_LEVEL": "WARNING"})]):
        yield base_url


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A fresh, migrated database `name` on the configured server, dropped afterwards. This
    process and the API servers it starts use it (DATABASE_URL), never the application's data."""
    from transactional.db import app_engine, owner_engine
    from transactional.migrate import upgrade

    server = database_url(get_settings()).rsplit("/", 1)[0]

    def recreate(create: bool) -> None:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                connection.execute(f'CREATE DATABASE "{name}"')

    recreate(create=True)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = f"{server}/{name}"
    for cached in (get_settings, app_engine, owner_engine):
        cached.cache_clear()
    try:
        upgrade()
        yield os.environ["DATABASE_URL"]
    finally:
        app_engine().dispose()
        owner_engine().dispose()
        recreate(create=False)
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        for cached in (get_settings, app_engine, owner_engine):
            cached.cache_clear()


def pgbench_tps(clients: int, seconds: int = 10, scale: int = 4) -> float:
    """TPS of pgbench's built-in TPC-B-like script on the same server, as a baseline."""
    settings = get_settings()
    url = database_url(settings)
    pgbench = EmbeddedPostgres.from_settings(settings).binary("pgbench")
    bench_url = url.rsplit("/", 1)[0] + "/pgbench"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run([str(pgbench.with_name("psql")), admin_url, "-qc", "DROP DATABASE IF EXISTS pgbench"], check=True)
    subprocess.run([str(pgbench.with_name("psql")), admin_url, "-qc", "CREATE DATABASE pgbench"], check=True)
    subprocess.run([str(pgbench), "-q", "-i", "-s", str(scale), bench_url], check=True, capture_output=True)
    result = subprocess.run(
        [str(pgbench), "-c", str(clients), "-j", "2", "-T", str(seconds), "-n", bench_url],
        check=True, capture_output=True, text=True,
    )
    line = next(l for l in result.stdout.splitlines() if l.startswith("tps ="))
    return float(line.split("=")[1].split()[0])


def report(name: str, figures: dict[str, object]) -> dict[str, object]:
    """Print and keep a benchmark's figures (benchmarks/results/<name>.json)."""
    document = {"benchmark": name, "machine": machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **figures}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(document, indent=2, default=str))
    print(json.dumps(document, indent=2, default=str))
    return document
