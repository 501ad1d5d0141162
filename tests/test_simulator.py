"""Simulated shoppers and staff drive the real HTTP API: they browse, buy (with declined and
retried payments), post events, and sellers' staff move the orders on; the report counts it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from transactional.datagen.generator import generate_marketplace
from transactional.datagen.loader import load_marketplace
from transactional.datagen.model import BehaviourModel
from serving.routes.search import Relaxed, SearchItem, SearchPage
from transactional.datagen.simulator import run_simulation, search_context
from transactional.db import PLATFORM, session_scope
from transactional.models import Order, OrderStatus, ShopperEvent, SubOrder

pytestmark = pytest.mark.slow

EAGER = BehaviourModel(add_to_cart_base=0.5, checkout_probability=1.0, decline_probability=0.5,
                       retry_success_probability=1.0, mean_session_views=3, search_start_probability=1.0)


def test_shoppers_buy_through_the_api_and_staff_fulfil_the_orders(live_server):
    load_marketplace(generate_marketplace("tiny", seed=4))
    with session_scope(PLATFORM) as session:
        historical_orders = session.scalar(select(func.count()).select_from(Order))
        historical_events = session.scalar(select(func.count()).select_from(ShopperEvent))

    report = run_simulation(live_server, shoppers=3, duration=8, seed=1, dataset=("tiny", 4), model=EAGER,
                            think_seconds=0.05)

    assert report.server_errors == 0, report.endpoints
    assert report.requests > 20 and report.sessions >= 3
    assert report.orders_placed >= 1 and report.payments_declined >= 1 and report.payments_retried >= 1
    assert report.events_posted > 0 and report.orders_moved_by_staff >= 1
    assert {"GET /v1/storefront/products/{id}", "POST /v1/checkout", "POST /v1/events"} <= set(report.endpoints)
    assert all(stats.p50_ms <= stats.p99_ms for stats in report.endpoints.values())
    with session_scope(PLATFORM) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == historical_orders + report.orders_placed
        assert session.scalar(select(func.count()).select_from(ShopperEvent)) == historical_events + report.events_posted
        moved = session.scalar(select(func.count()).select_from(SubOrder).join(Order).where(
            SubOrder.status.in_([OrderStatus.PACKED, OrderStatus.SHIPPED, OrderStatus.DELIVERED]),
            Order.idempotency_key.not_like("history:%")))
    assert moved >= 1  # staff moved on at least one share of an order placed by the simulation
    # No search API here: a search reports what the behaviour model finds (its category's products).
    with session_scope(PLATFORM) as session:
        searches = session.scalars(select(ShopperEvent.context).where(
            ShopperEvent.event_type == "search", ShopperEvent.context["source"].as_string() == "simulator")).all()
    assert searches and all(c["result_count"] >= len(c["results_shown"]) > 0 for c in searches)


def test_a_search_event_reports_the_search_apis_answer():
    def page(total: int, relaxed: bool) -> dict:
        return {"query": "red mug", "total": total, "items": [{"id": "p-1", "title": "Red mug"}],
                "relaxed": {"applied": relaxed, "steps": ["any_words"] if relaxed else [], "dropped_filters": []}}

    # the fields read are the serving API's
    assert {"total", "items", "relaxed"} <= set(SearchPage.model_fields)
    assert {"id"} <= set(SearchItem.model_fields) and {"applied"} <= set(Relaxed.model_fields)
    assert search_context(page(37, relaxed=False)) == {"result_count": 37, "results_shown": ["p-1"], "relaxed": False}
    # results from a relaxed query: the query as typed found nothing
    assert search_context(page(5, relaxed=True)) == {"result_count": 0, "results_shown": ["p-1"], "relaxed": True}


def test_a_request_rate_cap_holds(live_server):
    load_marketplace(generate_marketplace("tiny", seed=4))
    report = run_simulation(live_server, shoppers=4, duration=3, seed=2, rate=20, think_seconds=0.0)
    # the token bucket allows one second's burst on top of the rate
    assert report.requests <= 20 * (report.seconds + 1)


def test_simulating_against_an_unreachable_api_is_a_clear_cli_error():
    from typer.testing import CliRunner

    from orchestration.cli import app
    from orchestration.processes import free_port

    result = CliRunner().invoke(app, ["simulate", "--shoppers", "1", "--duration", "1",
                                      "--api", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and "cannot simulate" in result.output
