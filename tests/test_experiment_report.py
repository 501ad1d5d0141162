"""The experiment report end to end: shopper events carrying an experiment's context go through the
lakehouse, the warehouse load and dbt into `platform_experiment_results`, whose rates and Wilson
intervals match the events, and onto the admin dashboard as bars with error bars."""

from __future__ import annotations

import math
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter
from sqlalchemy import text

from tests.factories_analytics import build_marts, point_lakehouse_at, run_lakehouse, tiny_marketplace
from transactional.db import PLATFORM, AccessContext, session_scope
from transactional.services.dashboards import DashboardFilters, build_platform_dashboard
from transactional.services.events import ShopperEventIn, ingest_events

pytestmark = pytest.mark.slow

# variant -> (shoppers, who clicked, who added to cart, who purchased)
OUTCOMES = {"control": (20, 5, 4, 2), "treatment": (24, 12, 9, 6)}
SHOWN = 3  # items per response


def _wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    centre = successes + z * z / 2
    spread = z * math.sqrt(successes * (trials - successes) / trials + z * z / 4)
    return (centre - spread) / (trials + z * z), (centre + spread) / (trials + z * z)


def _event(kind: str, device: str, at: datetime, product: uuid.UUID, context: dict, **fields) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": kind, "anonymous_id": device, "session_id": f"s-{device}",
            "occurred_at": at.isoformat(), "product_id": str(product), "context": context, **fields}


def _experiment_events(products: list[uuid.UUID]) -> list[dict]:
    """Each shopper sees one response of the experiment (server-side impressions); some click an
    item shown (echoing the context), then add to cart and purchase; one purchase came first."""
    shown = datetime.now(UTC) - timedelta(hours=2)
    events = []
    for variant, (shoppers, clicked, carted, bought) in OUTCOMES.items():
        for n in range(shoppers):
            device = f"{variant}-{n}"
            context = {"experiment": "reco-two-tower", "variant": variant, "model_version": "3",
                       "request_id": f"r-{device}"}
            if n == shoppers - 1:  # a purchase before the shopper was exposed does not count
                events.append(_event("purchase", device, shown - timedelta(minutes=30), products[0], {}, quantity=1))
            events += [_event("impression", device, shown, product, context, position=i)
                       for i, product in enumerate(products[:SHOWN])]
            if n < clicked:
                events.append(_event("click", device, shown + timedelta(minutes=1), products[1], context, position=1))
            if n < carted:
                events.append(_event("add_to_cart", device, shown + timedelta(minutes=2), products[1], {}, quantity=1))
            if n < bought:
                events.append(_event("purchase", device, shown + timedelta(minutes=10), products[1], {}, quantity=1))
    return events


@pytest.fixture(scope="module")
def report(migrated_database, tmp_path_factory):
    previous = os.environ.get("MARKETLAKE_LAKEHOUSE_URI")
    tiny_marketplace(tmp_path_factory.mktemp("lakehouse"))
    with session_scope(PLATFORM) as session:
        products = list(session.scalars(text("SELECT id FROM products ORDER BY id LIMIT :n"), {"n": SHOWN}))
        batch = TypeAdapter(list[ShopperEventIn]).validate_python(_experiment_events(products))
        assert ingest_events(session, batch).accepted == len(batch)
    run_lakehouse()
    build_marts()
    with session_scope(PLATFORM) as session:
        yield {row["variant"]: row for row in session.execute(text(
            "SELECT * FROM platform_analytics.platform_experiment_results WHERE experiment = 'reco-two-tower'"))
            .mappings()}
    if previous is None:
        os.environ.pop("MARKETLAKE_LAKEHOUSE_URI", None)
    else:
        point_lakehouse_at(previous)


def test_the_report_counts_exposed_shoppers_and_their_outcomes(report):
    assert set(report) == set(OUTCOMES)
    for variant, (shoppers, clicked, carted, bought) in OUTCOMES.items():
        row = report[variant]
        assert (row["users"], row["impressions"], row["clicks"]) == (shoppers, shoppers * SHOWN, clicked)
        assert (row["users_clicked"], row["users_added_to_cart"], row["users_purchased"]) == (clicked, carted, bought)
        assert row["model_version"] == "3"


def test_each_rate_has_its_wilson_interval(report):
    for variant, (shoppers, *successes) in OUTCOMES.items():
        row = report[variant]
        for metric, count in zip(("click_through", "add_to_cart", "conversion"), successes, strict=True):
            low, high = _wilson(count, shoppers)
            assert float(row[f"{metric}_rate"]) == pytest.approx(count / shoppers, abs=5e-5)
            assert (float(row[f"{metric}_low"]), float(row[f"{metric}_high"])) == pytest.approx((low, high), abs=5e-5)


def test_the_admin_dashboard_draws_each_variant_with_error_bars(report):
    with session_scope(PLATFORM) as session:
        dashboard = build_platform_dashboard(session, DashboardFilters())
    panel = next(panel for panel in dashboard.panels if panel.id == "experiments")
    assert panel.points == len(OUTCOMES)
    traces = {trace["name"]: trace for trace in panel.figure["data"]}
    assert set(traces) == {"Click-through", "Added to cart", "Conversion"}
    conversion = traces["Conversion"]
    assert conversion["x"] == ["reco-two-tower · control", "reco-two-tower · treatment"]
    for index, variant in enumerate(("control", "treatment")):
        row = report[variant]
        assert conversion["y"][index] == pytest.approx(float(row["conversion_rate"]))
        assert conversion["error_y"]["array"][index] == pytest.approx(
            float(row["conversion_high"]) - float(row["conversion_rate"]))
        assert conversion["error_y"]["arrayminus"][index] == pytest.approx(
            float(row["conversion_rate"]) - float(row["conversion_low"]))


def test_sellers_do_not_see_experiment_results(report):
    with session_scope(PLATFORM) as session:
        tenant_id = session.scalar(text("SELECT id FROM tenants LIMIT 1"))
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        assert session.scalar(text("SELECT count(*) FROM platform_analytics.platform_experiment_results")) == 0
