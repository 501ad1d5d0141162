"""Checkout throughput through the HTTP API, against pgbench on the same server.

The API is served by uvicorn in its own process (benchmarks.common.api_server) on a scratch
database (created, migrated and dropped here), so the application database is never touched.
Each client is a buyer that, in a loop, adds two SKUs of two different sellers to its cart and
checks out (reserve stock, order with two sub-orders, authorize and capture with the simulated
provider, commit stock). An order counts when the API answered 201 and PAID.

Figures per concurrency level (16 and 64 clients): orders/s, checkout latency p50/p95, and the
ratio of orders/s to pgbench's TPC-B-like TPS with as many clients on the same server, run
in the same process right after.

    python -m benchmarks.bench_checkout [--small] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from decimal import Decimal

import httpx

from benchmarks.common import scratch_database

DATABASE = "marketlake_bench_checkout"
SELLERS = 4
SKUS_PER_SELLER = 50
ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def _marketplace(buyers: int) -> tuple[list[list[str]], list[dict[str, str]]]:
    """Active sellers with well-stocked SKUs, and buyers; returns (SKU ids per seller, buyer headers)."""
    from transactional.db import PLATFORM, session_scope
    from transactional.models import (
        InventoryLevel,
        Product,
        ProductStatus,
        Role,
        Sku,
        Tenant,
        TenantStatus,
        User,
        Warehouse,
    )
    from transactional.services.security import issue_access_token

    skus_by_seller = []
    with session_scope(PLATFORM) as session:
        for n in range(SELLERS):
            tenant = Tenant(
                slug=f"bench-{n}",
                legal_name=f"Bench {n}",
                store_name=f"Bench {n}",
                status=TenantStatus.active,
                branding={},
                tax_rate=Decimal("0.08"),
                shipping={"methods": ["standard"], "flat_rate": "4.00"},
            )
            session.add(tenant)
            session.flush()
            warehouse = Warehouse(tenant_id=tenant.id, code="main", name="Main", address={})
            products = [
                Product(
                    tenant_id=tenant.id,
                    title=f"Item {n}-{i}",
                    status=ProductStatus.active,
                    attributes={},
                    images=[],
                )
                for i in range(SKUS_PER_SELLER)
            ]
            session.add_all([warehouse, *products])
            session.flush()
            skus = [
                Sku(
                    tenant_id=tenant.id,
                    product_id=p.id,
                    sku_code=f"B{n}-{i}",
                    price=Decimal(5 + i % 40),
                    attributes={},
                    low_stock_threshold=10,
                )
                for i, p in enumerate(products)
            ]
            session.add_all(skus)
            session.flush()
            session.add_all(
                InventoryLevel(
                    tenant_id=tenant.id,
                    sku_id=s.id,
                    warehouse_id=warehouse.id,
                    available=1_000_000,
                    reserved=0,
                )
                for s in skus
            )
            skus_by_seller.append([str(s.id) for s in skus])
        # Buyers never log in here (tokens are issued directly), so no password hash is computed.
        users = [
            User(email=f"buyer-{n}@bench.example.com", password_hash="-", role=Role.buyer)
            for n in range(buyers)
        ]
        session.add_all(users)
    headers = [{"Authorization": f"Bearer {issue_access_token(u.id, Role.buyer, None)[0]}"} for u in users]
    return skus_by_seller, headers


async def _buyer_loop(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    skus_by_seller: list[list[str]],
    until: float,
    rng: random.Random,
    latencies: list[float],
    outcomes: dict[str, int],
) -> None:
    body = {
        "shipping_address": ADDRESS,
        "shipping_method": "standard",
        "payment": {"method": "card", "token": "tok_visa"},
    }
    while time.perf_counter() < until:
        for seller_skus in rng.sample(skus_by_seller, 2):
            added = await client.post(
                "/v1/cart/items", headers=headers, json={"sku_id": rng.choice(seller_skus), "quantity": 1}
            )
            added.raise_for_status()
        started = time.perf_counter()
        response = await client.post(
            "/v1/checkout", headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, json=body
        )
        latencies.append(time.perf_counter() - started)
        paid = response.status_code == 201 and response.json()["status"] == "PAID"
        outcome = "paid" if paid else f"http_{response.status_code}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1


async def _load(
    base_url: str, buyers: list[dict[str, str]], skus_by_seller: list[list[str]], seconds: float
) -> dict[str, object]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=len(buyers), max_keepalive_connections=len(buyers))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(
                _buyer_loop(client, headers, skus_by_seller, until, random.Random(n), latencies, outcomes)
                for n, headers in enumerate(buyers)
            )
        )
        elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "orders_per_s": round(outcomes.get("paid", 0) / elapsed, 1),
        "checkout_latency_ms": {"p50": round(quantiles[49] * 1000, 1), "p95": round(quantiles[94] * 1000, 1)},
        "outcomes": outcomes,
        "seconds": round(elapsed, 1),
    }


def run(seconds: float, levels: list[int], workers: int) -> dict[str, object]:
    with scratch_database(DATABASE) as url:
        from benchmarks.common import api_server, pgbench_tps

        skus_by_seller, buyers = _marketplace(max(levels))
        figures: dict[str, object] = {
            "api_workers": workers,
            "seconds_per_level": seconds,
            "items_per_order": 2,
            "sellers_per_order": 2,
        }
        with api_server(workers=workers) as base_url:
            asyncio.run(_load(base_url, buyers[:4], skus_by_seller, min(3.0, seconds)))  # warm-up
            for clients in levels:
                figures[f"clients_{clients}"] = asyncio.run(
                    _load(base_url, buyers[:clients], skus_by_seller, seconds)
                )
        for clients in levels:
            level = figures[f"clients_{clients}"]
            tps = pgbench_tps(clients, seconds=int(seconds))
            level["pgbench_tps"] = round(tps, 1)
            level["ratio_orders_per_s_to_pgbench_tps"] = round(level["orders_per_s"] / tps, 4)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="5 s per level instead of 30 s")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the API")
    arguments = parser.parse_args()
    from benchmarks.common import report

    name = "checkout_small" if arguments.small else "checkout"
    report(name, run(5.0 if arguments.small else 30.0, [16, 64], arguments.workers))


if __name__ == "__main__":
    main()
