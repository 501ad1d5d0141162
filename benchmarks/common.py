"""Shared benchmark plumbing: machine facts, a real API server in its own process, HTTP load
from a separate process, pgbench.

Benchmarks print one JSON document each; figures are reported as ratios against a baseline
measured in the same run, with the machine noted."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
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
            "python": platform.python_version(), "os": platform.platform(),
            # 1/5/15-minute load averages when the figures were taken: other jobs share the machine.
            "load_average": [round(value, 2) for value in os.getloadavg()]}


@contextmanager
def api_server(app: str = "transactional.api.app:create_app", workers: int = 1) -> Iterator[str]:
    """Serve `app` (a factory) with uvicorn in a separate process; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with running([Service(command, f"{base_url}/healthz", env={"MARKETLAKE_LOG_LEVEL": "WARNING"})]):
        yield base_url


# HTTP load from a separate process ---------------------------------------------------------------

async def _drive(base_url: str, path: str, requests: list[dict], concurrency: int, seconds: float,
                 headers: dict[str, str]) -> dict:
    latencies: list[float] = []
    errors = 0
    cursor = iter(requests)
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for params in cursor:
            if time.perf_counter() > deadline:
                return
            sent = time.perf_counter()
            try:
                response = await client.get(path, params=params)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - sent)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits, headers=headers) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"latencies": latencies, "errors": errors, "seconds": elapsed}


def _client(base_url: str, path: str, requests: list[dict], concurrency: int, seconds: float,
            headers: dict[str, str], results) -> None:
    results.put(asyncio.run(_drive(base_url, path, requests, concurrency, seconds, headers)))


def run_phase(base_url: str, path: str, requests: list[dict], concurrency: int, seconds: float,
              headers: dict[str, str] | None = None) -> dict:
    """GET `path` with each of `requests` (query parameters) in turn, `concurrency` in flight, for
    `seconds`, from a separate client process that prepared its requests first: requests/s, errors
    (non-200) and latency percentiles."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_client,
                              args=(base_url, path, requests, concurrency, seconds, headers or {}, results))
    process.start()
    outcome = results.get(timeout=seconds + 600)
    process.join()
    latencies = sorted(outcome["latencies"])
    if not latencies:
        return {"requests": 0, "errors": outcome["errors"]}
    quantiles = (statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1
                 else latencies * 99)
    return {
        "requests": len(latencies), "errors": outcome["errors"],
        "requests_per_s": round(len(latencies) / outcome["seconds"], 1),
        "p50_ms": round(quantiles[49] * 1000, 2), "p95_ms": round(quantiles[94] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
    }


def resident_megabytes(base_url: str) -> float:
    """The server process's resident memory, from its Prometheus /metrics."""
    metrics = httpx.get(f"{base_url}/metrics", timeout=30).text
    line = next(line for line in metrics.splitlines() if line.startswith("process_resident_memory_bytes"))
    return round(float(line.split()[-1]) / 2**20, 1)


def wait_ready(base_url: str, timeout: float = 3600) -> float:
    """Seconds until the server's /readyz answers 200."""
    began = time.monotonic()
    while httpx.get(f"{base_url}/readyz", timeout=30).status_code != 200:
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{base_url} was not ready after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - began


def _server_url() -> str:
    return database_url(get_settings()).rsplit("/", 1)[0]


def _recreate(name: str, *, create: bool, template: str | None = None) -> None:
    with psycopg.connect(f"{_server_url()}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            # FILE_COPY: a multi-GiB template copies in seconds instead of through the WAL.
            copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{copy}')


@contextmanager
def _database_in_use(name: str) -> Iterator[str]:
    """This process and the API servers it starts use database `name` (DATABASE_URL)."""
    from transactional.db import app_engine, owner_engine

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = f"{_server_url()}/{name}"
    for cached in (get_settings, app_engine, owner_engine):
        cached.cache_clear()
    try:
        yield os.environ["DATABASE_URL"]
    finally:
        app_engine().dispose()
        owner_engine().dispose()
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        for cached in (get_settings, app_engine, owner_engine):
            cached.cache_clear()


@contextmanager
def scratch_database(name: str, template: str | None = None) -> Iterator[str]:
    """A fresh, migrated database `name` on the configured server (a copy of `template` when
    given), dropped afterwards. This process and the API servers it starts use it
    (DATABASE_URL), never the application's data."""
    from transactional.migrate import upgrade

    _recreate(name, create=True, template=template)
    try:
        with _database_in_use(name) as url:
            upgrade()
            yield url
    finally:
        _recreate(name, create=False)


def generated_marketplace_template(scale: str, seed: int = 7, *, reload: bool = False) -> str:
    """The name of a database holding the generated marketplace (scale, seed), written through
    the services. Loading medium takes tens of minutes, so it is loaded once and kept; a benchmark
    takes a copy (`scratch_database(name, template=...)`), which takes seconds. `reload` rebuilds
    it (after a change to the generator or the loader). The load's own figures are kept in
    results/load_<scale>.json."""
    from transactional.datagen.generator import generate_marketplace
    from transactional.datagen.loader import load_marketplace
    from transactional.migrate import upgrade

    name, loaded = f"marketlake_bench_{scale}_{seed}", f"marketlake generated marketplace {scale}:{seed}, loaded"
    with psycopg.connect(f"{_server_url()}/postgres", autocommit=True) as connection:
        comment = connection.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                                     " WHERE datname = %s", (name,)).fetchone()
    if comment and comment[0] == loaded and not reload:
        return name
    _recreate(name, create=True)
    data = generate_marketplace(scale, seed)
    with _database_in_use(name):
        upgrade()
        started = time.perf_counter()
        summary = load_marketplace(data)
        seconds = time.perf_counter() - started
    with psycopg.connect(f"{_server_url()}/postgres", autocommit=True) as connection:
        connection.execute(f"COMMENT ON DATABASE \"{name}\" IS '{loaded}'")
    rows = sum(summary.written.values())
    report(f"load_{scale}", {"scale": scale, "seed": seed, "seconds": round(seconds, 1), "rows_written": rows,
                             "rows_per_s": round(rows / seconds), "written": summary.written,
                             "step_seconds": summary.seconds})
    return name


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
