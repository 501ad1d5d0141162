"""Shopper events accepted per second through the HTTP API, with batching, against baselines
measured in the same run on the same server.

The API is served by uvicorn in its own process (benchmarks.common.api_server) on a scratch
database; the load comes from client processes that build their batches (a storefront mix of
impressions, views, clicks, searches, cart changes and purchases about real products) before a
common start and then post them back to back. An event counts when the API answered 200 and
reported it accepted.

Baselines, same rows and same server:
- `healthz_requests_per_s`: GET /healthz through the same server and clients, the cost of a
  request that does nothing; events/s over it says how much one batched request carries.
- `raw_insert_events_per_s`: the service's INSERT ... SELECT FROM json_to_recordset statement fed
  already-serialised batches on one connection, no HTTP and no validation: the database ceiling.
- `raw_unnest_events_per_s`: the same rows through INSERT ... SELECT FROM unnest(column arrays),
  the arrays adapted by psycopg: why the service sends one JSON document instead.

    python -m benchmarks.bench_events [--small] [--workers N] [--clients N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from benchmarks.common import api_server, report, scratch_database

DATABASE = "marketlake_bench_events"
TARGET_EVENTS_PER_S = 20_000
PRODUCTS = 500
# Roughly what a storefront sends: many impressions per view, few purchases.
EVENT_MIX = [("impression", 50), ("view", 20), ("click", 12), ("search", 8), ("add_to_cart", 5),
             ("remove_from_cart", 2), ("purchase", 3)]


def storefront_events(count: int, product_ids: list[str], rng: random.Random) -> list[dict]:
    kinds = rng.choices([kind for kind, _ in EVENT_MIX], weights=[weight for _, weight in EVENT_MIX], k=count)
    now = datetime.now(UTC)
    events = []
    for index, kind in enumerate(kinds):
        shopper = rng.randrange(5000)
        event = {"event_id": str(uuid.uuid4()), "type": kind, "anonymous_id": f"device-{shopper}",
                 "session_id": f"session-{shopper}-{index // 50}",
                 "occurred_at": (now - timedelta(seconds=rng.randrange(86_400))).isoformat(),
                 "context": {"page": "/search" if kind == "search" else "/product", "device": "mobile"}}
        if kind == "search":
            event["query"] = rng.choice(["running shoes", "kettle", "usb-c cable", "desk lamp", "yoga mat"])
        else:
            event["product_id"] = rng.choice(product_ids)
        if kind in ("impression", "click"):
            event["position"] = rng.randrange(48)
        if kind in ("add_to_cart", "remove_from_cart", "purchase"):
            event["quantity"] = rng.randint(1, 3)
        events.append(event)
    return events


def _batch_bodies(batches: int, batch_size: int, product_ids: list[str], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps({"events": storefront_events(batch_size, product_ids, rng)}).encode()
            for _ in range(batches)]


# Client processes (spawned: they share nothing with the server or each other) ----------------

def _post_batches(base_url: str, bodies: list[bytes], start: multiprocessing.synchronize.Barrier) -> dict:
    accepted, latencies = 0, []
    with httpx.Client(base_url=base_url, timeout=120, headers={"Content-Type": "application/json"}) as client:
        start.wait()
        began = time.perf_counter()
        for body in bodies:
            sent = time.perf_counter()
            response = client.post("/v1/events", content=body)
            latencies.append(time.perf_counter() - sent)
            if response.status_code == 200:
                accepted += response.json()["accepted"]
        return {"accepted": accepted, "began": began, "ended": time.perf_counter(), "latencies": latencies}


def _events_client(base_url: str, batches: int, batch_size: int, product_ids: list[str], seed: int,
                   start, results) -> None:
    results.put(_post_batches(base_url, _batch_bodies(batches, batch_size, product_ids, seed), start))


def _healthz_client(base_url: str, seconds: float, start, results) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        start.wait()
        began = time.perf_counter()
        done = 0
        while time.perf_counter() - began < seconds:
            done += client.get("/healthz").status_code == 200
        results.put({"requests": done, "seconds": time.perf_counter() - began})


def _run_clients(target, args_per_client: list[tuple]) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(len(args_per_client)), context.Queue()
    processes = [context.Process(target=target, args=(*args, start, results)) for args in args_per_client]
    for process in processes:
        process.start()
    outcomes = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return outcomes


# CPU spent by the server side (API processes and PostgreSQL), which other work on the machine
# does not inflate the way it inflates wall time ----------------------------------------------

def _process_tree(root: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _read(str(stat)).rsplit(b")", 1)[-1].split()
        if fields:
            parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return tree


def _cpu_seconds(root: int) -> float:
    """User + system CPU of `root` and its live descendants."""
    ticks = 0
    for pid in _process_tree(root):
        fields = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_roots(base_url: str) -> dict[str, int]:
    """The uvicorn process serving `base_url`, and the embedded PostgreSQL's postmaster if local."""
    from transactional.config import get_settings

    marker = f"--port\0{base_url.rsplit(':', 1)[1]}\0".encode()
    roots = {"api": next(int(path.parent.name) for path in Path("/proc").glob("[0-9]*/cmdline")
                         if marker in _read(str(path)))}
    postmaster_pid = get_settings().home_dir / "pgdata" / "postmaster.pid"
    if postmaster_pid.exists():
        roots["postgres"] = int(postmaster_pid.read_text().split()[0])
    return roots


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:  # the process exited while we looked
        return b""


# Phases -----------------------------------------------------------------------------------------

def _products() -> list[str]:
    """One active store with products, so events resolve their tenant as in production."""
    from decimal import Decimal

    from transactional.db import PLATFORM, session_scope
    from transactional.models import Product, ProductStatus, Tenant, TenantStatus

    with session_scope(PLATFORM) as session:
        tenant = Tenant(slug="bench-events", legal_name="Bench", store_name="Bench", status=TenantStatus.active,
                        branding={}, tax_rate=Decimal("0"), shipping={})
        session.add(tenant)
        session.flush()
        products = [Product(tenant_id=tenant.id, title=f"Item {n}", status=ProductStatus.active, attributes={},
                            images=[]) for n in range(PRODUCTS)]
        session.add_all(products)
        session.flush()
        return [str(product.id) for product in products]


def _truncate_events() -> None:
    from sqlalchemy import text

    from transactional.db import owner_engine

    with owner_engine().begin() as connection:
        connection.execute(text("TRUNCATE shopper_events"))


def _raw_rates(product_ids: list[str], batches: int, batch_size: int) -> dict[str, float]:
    """Events/s of the service's statement fed ready JSON, and of the unnest alternative."""
    from sqlalchemy import text

    from transactional.db import PLATFORM, session_scope
    from transactional.services.events import EVENTS, INSERT_EVENTS

    rng = random.Random(7)
    parsed = [EVENTS.validate_python(storefront_events(batch_size, product_ids, rng)) for _ in range(batches)]
    documents = [EVENTS.dump_json(batch, exclude_none=True).decode() for batch in parsed]
    began = time.perf_counter()
    for document in documents:
        with session_scope(PLATFORM) as session:
            session.execute(INSERT_EVENTS, {"events": document})
    json_rate = batches * batch_size / (time.perf_counter() - began)

    _truncate_events()
    names = ("event_id", "event_type", "user_id", "anonymous_id", "session_id", "occurred_at", "tenant_id",
             "product_id", "sku_id", "query", "position", "quantity", "context")
    unnest = text(
        "INSERT INTO shopper_events (" + ", ".join(names) + ")"
        " SELECT e.event_id, e.event_type, e.user_id, e.anonymous_id, e.session_id, e.occurred_at,"
        " coalesce(p.tenant_id, e.tenant_id), e.product_id, e.sku_id, e.query, e.position, e.quantity, e.context"
        " FROM unnest(CAST(:event_id AS uuid[]), CAST(:event_type AS text[]), CAST(:user_id AS uuid[]),"
        " CAST(:anonymous_id AS text[]), CAST(:session_id AS text[]), CAST(:occurred_at AS timestamptz[]),"
        " CAST(:tenant_id AS uuid[]), CAST(:product_id AS uuid[]), CAST(:sku_id AS uuid[]), CAST(:query AS text[]),"
        " CAST(:position AS integer[]), CAST(:quantity AS integer[]), CAST(:context AS jsonb[]))"
        " AS e(" + ", ".join(names) + ") LEFT JOIN products p ON p.id = e.product_id"
        " ON CONFLICT (event_id) DO NOTHING"
    )
    fresh = [EVENTS.validate_python(storefront_events(batch_size, product_ids, rng)) for _ in range(batches)]
    began = time.perf_counter()
    for batch in fresh:
        columns = {name: [] for name in names}
        for event in batch:
            fields = event.__dict__
            for name in names:
                value = event.type if name == "event_type" else fields.get(name)
                columns[name].append(json.dumps(value) if name == "context" else value)
        with session_scope(PLATFORM) as session:
            session.execute(unnest, columns)
    unnest_rate = batches * batch_size / (time.perf_counter() - began)
    return {"raw_insert_events_per_s": round(json_rate), "raw_unnest_events_per_s": round(unnest_rate)}


def _api_rates(base_url: str, product_ids: list[str], clients: int, batches: int, batch_size: int,
               healthz_seconds: float) -> dict[str, object]:
    roots = _server_roots(base_url)
    cpu_before = {name: _cpu_seconds(pid) for name, pid in roots.items()}
    outcomes = _run_clients(_events_client, [(base_url, batches // clients, batch_size, product_ids, seed)
                                             for seed in range(clients)])
    # Includes the clients' batch building window, when the server idles.
    cpu = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in roots.items()}
    accepted = sum(outcome["accepted"] for outcome in outcomes)
    elapsed = max(o["ended"] for o in outcomes) - min(o["began"] for o in outcomes)
    latencies = sorted(latency for outcome in outcomes for latency in outcome["latencies"])
    health = _run_clients(_healthz_client, [(base_url, healthz_seconds)] * clients)
    healthz_rate = sum(h["requests"] for h in health) / max(h["seconds"] for h in health)
    return {
        "events_per_s": round(accepted / elapsed),
        "events_accepted": accepted,
        "events_seconds": round(elapsed, 2),
        "batch_latency_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                             "p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1)},
        "healthz_requests_per_s": round(healthz_rate),
        "server_cpu_ms_per_1000_events": {name: round(seconds * 1e6 / accepted, 1) for name, seconds in cpu.items()},
        "events_per_server_cpu_second": round(accepted / sum(cpu.values())),
    }


def run(*, small: bool, workers: int, clients: int, batch_size: int) -> dict[str, object]:
    api_batches = 60 if small else 400
    raw_batches = 20 if small else 100
    # Other work on the machine shares the two cores; the ratios below are the comparable figures.
    load_before = os.getloadavg()[0]
    with scratch_database(DATABASE):
        product_ids = _products()
        raw = _raw_rates(product_ids, raw_batches, batch_size)
        _truncate_events()
        with api_server(workers=workers) as base_url:
            api = _api_rates(base_url, product_ids, clients, api_batches, batch_size, 3 if small else 10)
    return {
        "api_workers": workers,
        "client_processes": clients,
        "batch_size": batch_size,
        **api,
        **raw,
        "ratio_events_per_s_to_healthz_requests_per_s": round(api["events_per_s"] / api["healthz_requests_per_s"], 1),
        "ratio_api_to_raw_insert": round(api["events_per_s"] / raw["raw_insert_events_per_s"], 3),
        "ratio_raw_insert_to_unnest": round(raw["raw_insert_events_per_s"] / raw["raw_unnest_events_per_s"], 2),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "meets_target": api["events_per_s"] >= TARGET_EVENTS_PER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run (fewer batches, shorter baselines)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=4, help="client processes posting batches")
    parser.add_argument("--batch", type=int, default=1000, help="events per request (at most 1000)")
    options = parser.parse_args()
    figures = run(small=options.small, workers=options.workers, clients=options.clients, batch_size=options.batch)
    report("events_small" if options.small else "events", figures)


if __name__ == "__main__":
    main()
