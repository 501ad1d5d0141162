"""Bulk product import throughput through `catalog.import_products`, against a raw-INSERT baseline.

Runs in its own scratch database on the configured server (created, migrated and dropped here),
so the application database is never touched. Figures, each in rows/s:

- validate: building `ProductRow`s from plain dicts (what the upload endpoint does after parsing);
- import_new: importing rows of products that do not exist yet (RLS, row checks, product and SKU
  upserts, version snapshots, plus the capture trigger's outbox and audit rows);
- import_unchanged: importing the same rows again (the idempotent no-op path);
- import_changed: importing them with every price changed (a new version for every product);
- baseline_raw_insert: the same rows, multi-row INSERT ... SELECT FROM json_to_recordset in the
  same batch size into an UNLOGGED scratch table with no RLS, no constraints, no indexes, no
  trigger and no validation (the rows go from Python dicts straight to the server).

Ratios are import throughput over the baseline, measured in the same run on the same server.

    python -m benchmarks.bench_bulk_import [--small]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from decimal import Decimal

import psycopg

from benchmarks.common import scratch_database

DATABASE = "marketlake_bench_bulk_import"
CATEGORIES = [
    f"{top}/{leaf}"
    for top in ("home", "garden", "toys", "sports", "fashion")
    for leaf in ("basics", "premium", "outdoor", "kids", "gifts", "sale", "new", "classic")
]


def _row_values(count: int, price_shift: Decimal = Decimal("0")) -> list[dict]:
    """`count` SKU rows of products with 1-3 SKUs each, like a seller's catalogue export."""
    rows, product = [], 0
    while len(rows) < count:
        for variant in range(product % 3 + 1):
            if len(rows) == count:
                break
            rows.append(
                {
                    "product_ref": f"P{product:07d}",
                    "sku_code": f"P{product:07d}-{variant}",
                    "title": f"Product {product}",
                    "description": "A well-made product. " * 5,
                    "category": CATEGORIES[product % len(CATEGORIES)],
                    "brand": f"Brand {product % 97}",
                    "attributes": {"material": ("steel", "wood", "cotton")[product % 3]},
                    "images": [f"https://img.example.com/p/{product}.jpg"],
                    "status": "active",
                    "price": Decimal(10 + product % 90) + Decimal(variant) + price_shift,
                    "currency": "USD",
                    "sku_attributes": {"color": ("red", "green", "blue")[variant]},
                    "weight_grams": 250 + variant,
                }
            )
        product += 1
    return rows


def _timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _import(tenant_id: uuid.UUID, actor: uuid.UUID, rows: list) -> object:
    from transactional.db import AccessContext, session_scope
    from transactional.services.catalog import import_products

    with session_scope(AccessContext("tenant", tenant_id=tenant_id, user_id=actor)) as session:
        return import_products(session, tenant_id=tenant_id, actor_user_id=actor, rows=rows)


_BASELINE_TABLE = """
CREATE UNLOGGED TABLE bench_raw_rows (
    product_ref text, sku_code text, title text, description text, category text, brand text,
    attributes jsonb, images jsonb, status text, price numeric(14, 2), currency text,
    sku_attributes jsonb, weight_grams int
)"""
# The same transport as the import (one JSON document per batch), so the ratio measures what the
# import adds: validation, RLS, constraints, indexes, versions and the capture trigger.
_BASELINE_INSERT = """
INSERT INTO bench_raw_rows
SELECT * FROM json_to_recordset(%s::json) AS u(
    product_ref text, sku_code text, title text, description text, category text, brand text,
    attributes jsonb, images jsonb, status text, price numeric(14, 2), currency text,
    sku_attributes jsonb, weight_grams int
)"""


def _baseline(url: str, values: list[dict], batch: int) -> None:
    with psycopg.connect(url) as connection:
        connection.execute(_BASELINE_TABLE)
        for start in range(0, len(values), batch):
            connection.execute(_BASELINE_INSERT, [json.dumps(values[start : start + batch], default=str)])
        connection.commit()


def run(rows: int) -> dict[str, object]:
    with scratch_database(DATABASE) as url:
        from sqlalchemy import text

        from transactional.db import PLATFORM, owner_engine, session_scope
        from transactional.models import Tenant, TenantStatus
        from transactional.services.catalog import WRITE_BATCH, ProductRow, ensure_categories

        with session_scope(PLATFORM) as session:
            ensure_categories(session, CATEGORIES)
            tenant = Tenant(
                slug="bench",
                legal_name="Bench Ltd",
                store_name="Bench",
                status=TenantStatus.active,
                branding={},
                shipping={},
            )
            session.add(tenant)
            session.flush()
            tenant_id = tenant.id
        actor = uuid.uuid4()

        values = _row_values(rows)
        validate_s, product_rows = _timed(lambda: [ProductRow.model_validate(v) for v in values])
        new_s, created = _timed(lambda: _import(tenant_id, actor, product_rows))
        unchanged_s, unchanged = _timed(lambda: _import(tenant_id, actor, product_rows))
        repriced = [ProductRow.model_validate(v) for v in _row_values(rows, Decimal("0.5"))]
        changed_s, changed = _timed(lambda: _import(tenant_id, actor, repriced))
        baseline_s, _ = _timed(lambda: _baseline(url, values, WRITE_BATCH))

        with owner_engine().connect() as connection:
            side_effects = {
                table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("products", "skus", "product_versions", "outbox", "audit_log")
            }
        assert (
            created.skus_created == rows and unchanged.skus_unchanged == rows and changed.skus_updated == rows
        )

        def rate(seconds: float) -> float:
            return round(rows / seconds, 1)

        baseline = rate(baseline_s)
        return {
            "rows": rows,
            "products": created.products_created,
            "rows_per_s": {
                "validate": rate(validate_s),
                "import_new": rate(new_s),
                "import_unchanged": rate(unchanged_s),
                "import_changed": rate(changed_s),
                "baseline_raw_insert": baseline,
            },
            "seconds": {
                "validate": round(validate_s, 2),
                "import_new": round(new_s, 2),
                "import_unchanged": round(unchanged_s, 2),
                "import_changed": round(changed_s, 2),
                "baseline_raw_insert": round(baseline_s, 2),
            },
            "ratio_vs_baseline": {
                "import_new": round(rate(new_s) / baseline, 3),
                "import_unchanged": round(rate(unchanged_s) / baseline, 3),
                "import_changed": round(rate(changed_s) / baseline, 3),
            },
            "rows_written_in_total": side_effects,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="5k rows instead of 100k")
    arguments = parser.parse_args()
    from benchmarks.common import report

    report(
        "bulk_import_small" if arguments.small else "bulk_import", run(5_000 if arguments.small else 100_000)
    )


if __name__ == "__main__":
    main()
