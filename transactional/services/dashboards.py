"""Seller and marketplace dashboards built from the analytics marts as Plotly figures.

A dashboard is a document: key figures, filter choices and panels, each panel a Plotly figure
(JSON) that the browser draws. The orchestrator generates every seller's default dashboard after
each refresh of the marts (`generate_seller_dashboards`) and the API serves it; a seller's own
date range or product is built on request from the same marts. Every query runs in the caller's
session, so row-level security on the marts holds here too, and every seller query also names its
tenant (a platform admin's session sees every tenant).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import plotly.graph_objects as go
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from transactional.db import AccessContext, session_scope
from transactional.errors import Unprocessable

DEFAULT_DAYS = 90
TOP_PRODUCTS = 10
INVENTORY_ALERTS = 12
PALETTE = {"primary": "#2563eb", "secondary": "#f97316", "good": "#16a34a", "warn": "#eab308", "bad": "#dc2626",
           "muted": "#94a3b8"}
STOCK_COLORS = {"out_of_stock": PALETTE["bad"], "low_stock": PALETTE["warn"], "in_stock": PALETTE["good"]}
SETTLEMENT_COLORS = {"paid": PALETTE["good"], "scheduled": PALETTE["primary"], "open": PALETTE["muted"]}
EXPERIMENTS_SHOWN = 3
# (column prefix in platform_experiment_results, label, colour)
EXPERIMENT_METRICS = (("click_through", "Click-through", PALETTE["primary"]),
                      ("add_to_cart", "Added to cart", PALETTE["secondary"]),
                      ("conversion", "Conversion", PALETTE["good"]))


class DashboardFilters(BaseModel):
    start: date | None = Field(None, description="first day shown (default: 90 days before `end`)")
    end: date | None = Field(None, description="last day shown (default: the latest day with data)")
    product_id: uuid.UUID | None = Field(None, description="only this product (seller dashboards)")

    @property
    def is_default(self) -> bool:
        return self.start is None and self.end is None and self.product_id is None


class Kpi(BaseModel):
    label: str
    value: str


class Panel(BaseModel):
    id: str
    title: str
    figure: dict = Field(description="a Plotly figure: data and layout")
    points: int = Field(description="data points drawn (0: nothing to show for these filters)")


class ProductChoice(BaseModel):
    id: uuid.UUID
    title: str


class Dashboard(BaseModel):
    audience: str = Field(description="seller | platform")
    tenant_id: uuid.UUID | None
    title: str
    generated_at: datetime
    data_through: date | None
    start: date | None
    end: date | None
    product_id: uuid.UUID | None
    products: list[ProductChoice]
    kpis: list[Kpi]
    panels: list[Panel]


# --- figures -------------------------------------------------------------------------------------

def _layout(figure: go.Figure, **extra) -> dict:
    """Readable on a phone: small margins, legend under the plot, no fixed width."""
    figure.update_layout(**{"margin": {"l": 48, "r": 16, "t": 16, "b": 40}, "height": 320, "autosize": True,
                            "legend": {"orientation": "h", "y": -0.2}, "font": {"size": 12},
                            "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "x unified", **extra})
    figure.update_xaxes(gridcolor="#e2e8f0")
    figure.update_yaxes(gridcolor="#e2e8f0")
    return json.loads(figure.to_json())


def _panel(panel_id: str, title: str, figure: go.Figure, points: int, **layout) -> Panel:
    return Panel(id=panel_id, title=title, figure=_layout(figure, **layout), points=points)


def _number(value) -> float:
    return float(value) if isinstance(value, Decimal) else (value or 0)


def _short(label: str, width: int = 24) -> str:
    """Axis labels that leave a phone screen room for the bars."""
    return label if len(label) <= width else label[:width - 1] + "…"


def _count_axis(largest: int, **extra) -> dict:
    """An axis of whole counts: no 0.5 ticks when the counts are small."""
    return {"rangemode": "tozero", "tickformat": ",d", **({"dtick": 1} if largest <= 10 else {}), **extra}


def _money(value) -> str:
    return f"{_number(value):,.2f}"


def _percent(value) -> str:
    return "–" if value is None else f"{float(value):.1%}"


# --- seller dashboard ----------------------------------------------------------------------------

def _rows(session: Session, sql: str, **params) -> list:
    return session.execute(text(sql), params).mappings().all()


def _marts_built(session: Session, mart: str) -> bool:
    """Dashboards read dbt's marts, which exist only once the warehouse has been built."""
    return session.scalar(text("SELECT to_regclass(:mart)"), {"mart": mart}) is not None


def _awaiting_first_refresh(audience: str, tenant_id: uuid.UUID | None) -> Dashboard:
    return Dashboard(audience=audience, tenant_id=tenant_id, generated_at=datetime.now(UTC),
                     title="No analytics yet: the first warehouse refresh has not run",
                     data_through=None, start=None, end=None, product_id=None, products=[], kpis=[], panels=[])


def _seller_range(session: Session, tenant_id: uuid.UUID, filters: DashboardFilters) -> tuple[date | None, date, date]:
    through = session.scalar(text("SELECT max(date) FROM seller_analytics.seller_daily_sales WHERE tenant_id = :t"),
                             {"t": tenant_id})
    end = filters.end or through or datetime.now(UTC).date()
    start = filters.start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Unprocessable("the start of the range is after its end", field="start")
    return through, start, end


def _sales_over_time(session: Session, scope: dict) -> Panel:
    if scope["p"] is None:
        rows = _rows(session, "SELECT date, gmv AS revenue, net_revenue, orders FROM seller_analytics.seller_daily_sales"
                              " WHERE tenant_id = :t AND date BETWEEN :a AND :b ORDER BY date", **scope)
    else:
        rows = _rows(session, "SELECT date, sum(revenue) AS revenue, NULL AS net_revenue, sum(orders) AS orders"
                              " FROM seller_analytics.seller_product_performance WHERE tenant_id = :t"
                              " AND product_id = :p AND date BETWEEN :a AND :b GROUP BY date ORDER BY date", **scope)
    days = [row["date"] for row in rows]
    figure = go.Figure()
    figure.add_bar(x=days, y=[_number(r["revenue"]) for r in rows], name="Revenue (GMV)",
                   marker_color=PALETTE["primary"])
    if scope["p"] is None:
        figure.add_scatter(x=days, y=[_number(r["net_revenue"]) for r in rows], name="Net revenue", mode="lines",
                           line={"color": PALETTE["good"], "width": 2})
    figure.add_scatter(x=days, y=[r["orders"] for r in rows], name="Orders", mode="lines+markers", yaxis="y2",
                       line={"color": PALETTE["secondary"]})
    return _panel("sales", "Revenue and orders over time", figure, len(rows),
                  yaxis={"title": "revenue"},
                  yaxis2=_count_axis(max((r["orders"] for r in rows), default=0), title="orders", overlaying="y",
                                     side="right", showgrid=False))


def _top_products(session: Session, scope: dict) -> Panel:
    rows = _rows(session, "SELECT product_title, sum(revenue) AS revenue, sum(units_sold) AS units"
                          " FROM seller_analytics.seller_product_performance WHERE tenant_id = :t"
                          " AND date BETWEEN :a AND :b AND (CAST(:p AS uuid) IS NULL OR product_id = :p)"
                          " GROUP BY product_id, product_title HAVING sum(revenue) > 0"
                          f" ORDER BY revenue DESC LIMIT {TOP_PRODUCTS}", **scope)
    rows = list(reversed(rows))  # largest at the top of a horizontal bar chart
    figure = go.Figure(go.Bar(x=[_number(r["revenue"]) for r in rows],
                              y=[_short(r["product_title"]) for r in rows],
                              orientation="h", marker_color=PALETTE["primary"],
                              customdata=[r["units"] for r in rows],
                              hovertemplate="%{y}: %{x:,.2f} (%{customdata} units)<extra></extra>"))
    return _panel("top_products", "Top products by revenue", figure, len(rows), hovermode="closest",
                  yaxis={"automargin": True})


def _funnel(session: Session, scope: dict) -> tuple[Panel, dict]:
    totals = _rows(session, "SELECT coalesce(sum(views), 0) AS views, coalesce(sum(add_to_carts), 0) AS carts,"
                            " coalesce(sum(purchases), 0) AS purchases, coalesce(sum(units_sold), 0) AS units,"
                            " coalesce(sum(units_returned), 0) AS returned"
                            " FROM seller_analytics.seller_product_performance WHERE tenant_id = :t"
                            " AND date BETWEEN :a AND :b AND (CAST(:p AS uuid) IS NULL OR product_id = :p)", **scope)[0]
    stages = [("Product views", totals["views"]), ("Added to cart", totals["carts"]), ("Purchased", totals["purchases"])]
    figure = go.Figure(go.Funnel(y=[name for name, _ in stages], x=[value for _, value in stages],
                                 textinfo="value+percent initial",
                                 marker={"color": [PALETTE["primary"], PALETTE["secondary"], PALETTE["good"]]}))
    points = sum(1 for _, value in stages if value)
    return _panel("funnel", "Conversion funnel", figure, points, hovermode="closest"), dict(totals)


def _inventory(session: Session, scope: dict) -> tuple[Panel, dict]:
    rows = _rows(session, "SELECT sku_code, product_title, available, days_of_cover, stock_status"
                          " FROM seller_analytics.seller_inventory_health WHERE tenant_id = :t"
                          " AND (CAST(:p AS uuid) IS NULL OR product_id = :p)"
                          " ORDER BY CASE stock_status WHEN 'out_of_stock' THEN 0 WHEN 'low_stock' THEN 1 ELSE 2 END,"
                          f" days_of_cover NULLS LAST, available LIMIT {INVENTORY_ALERTS}", **scope)
    counts = _rows(session, "SELECT stock_status, count(*) AS skus FROM seller_analytics.seller_inventory_health"
                            " WHERE tenant_id = :t GROUP BY stock_status", **scope)
    rows = list(reversed(rows))
    figure = go.Figure(go.Bar(
        x=[r["available"] for r in rows],
        y=[_short(r["product_title"], 18) + f" ({r['sku_code'][-6:]})" for r in rows],
        orientation="h", marker_color=[STOCK_COLORS[r["stock_status"]] for r in rows],
        customdata=[[r["stock_status"].replace("_", " "), "–" if r["days_of_cover"] is None else
                     f"{float(r['days_of_cover']):.0f} days"] for r in rows],
        hovertemplate="%{y}: %{x} units, %{customdata[0]}, cover %{customdata[1]}<extra></extra>"))
    return (_panel("inventory", "Inventory alerts: SKUs with the least stock cover", figure, len(rows),
                   hovermode="closest", yaxis={"automargin": True}, xaxis={"title": "units available"}),
            {row["stock_status"]: row["skus"] for row in counts})


def _ratings(session: Session, scope: dict) -> tuple[Panel, dict]:
    totals = _rows(session, "SELECT coalesce(sum(one_star), 0) AS s1, coalesce(sum(two_stars), 0) AS s2,"
                            " coalesce(sum(three_stars), 0) AS s3, coalesce(sum(four_stars), 0) AS s4,"
                            " coalesce(sum(five_stars), 0) AS s5, coalesce(sum(reviews), 0) AS reviews,"
                            " sum(average_rating * reviews) / nullif(sum(reviews), 0) AS average"
                            " FROM seller_analytics.seller_reviews_summary WHERE tenant_id = :t"
                            " AND (CAST(:p AS uuid) IS NULL OR product_id = :p)", **scope)[0]
    stars = [totals[f"s{n}"] for n in range(1, 6)]
    figure = go.Figure(go.Bar(x=[f"{n}★" for n in range(1, 6)], y=stars,
                              marker_color=[PALETTE["bad"], PALETTE["secondary"], PALETTE["warn"], PALETTE["good"],
                                            PALETTE["good"]]))
    return (_panel("ratings", "Ratings", figure, sum(1 for count in stars if count), hovermode="closest",
                   yaxis=_count_axis(max(stars), title="reviews")), dict(totals))


def _settlements(session: Session, scope: dict) -> tuple[Panel, list]:
    rows = _rows(session, "SELECT period_start, period_end, payout_date, net_payout, status"
                          " FROM seller_analytics.seller_settlements WHERE tenant_id = :t"
                          " AND period_end >= :a AND period_start <= :b ORDER BY period_start", **scope)
    figure = go.Figure()
    for status, color in SETTLEMENT_COLORS.items():
        chosen = [r for r in rows if r["status"] == status]
        figure.add_bar(x=[r["period_start"] for r in chosen], y=[_number(r["net_payout"]) for r in chosen],
                       name=status.capitalize(), marker_color=color,
                       customdata=[r["payout_date"].isoformat() for r in chosen],
                       hovertemplate="week of %{x}: %{y:,.2f}, paid out %{customdata}<extra></extra>")
    return (_panel("settlements", "Settlements: weekly net payout", figure, len(rows), barmode="stack",
                   hovermode="closest", yaxis={"title": "net payout"}), rows)


def build_seller_dashboard(session: Session, tenant_id: uuid.UUID, filters: DashboardFilters) -> Dashboard:
    """The seller's dashboard for the filters, from the seller marts."""
    if not _marts_built(session, "seller_analytics.seller_daily_sales"):
        return _awaiting_first_refresh("seller", tenant_id)
    through, start, end = _seller_range(session, tenant_id, filters)
    scope = {"t": tenant_id, "a": start, "b": end, "p": filters.product_id}
    totals = _rows(session, "SELECT coalesce(sum(gmv), 0) AS gmv, coalesce(sum(net_revenue), 0) AS net,"
                            " coalesce(sum(orders), 0) AS orders, sum(gmv) / nullif(sum(orders), 0) AS aov"
                            " FROM seller_analytics.seller_daily_sales WHERE tenant_id = :t"
                            " AND date BETWEEN :a AND :b", **scope)[0]
    sales = _sales_over_time(session, scope)
    funnel, flows = _funnel(session, scope)
    inventory, stock = _inventory(session, scope)
    ratings, rated = _ratings(session, scope)
    settlements, statements = _settlements(session, scope)
    upcoming = next((s for s in statements if s["status"] != "paid"), None)
    products = _rows(session, "SELECT DISTINCT product_id, product_title FROM seller_analytics.seller_product_performance"
                              " WHERE tenant_id = :t ORDER BY product_title", t=tenant_id)
    store = session.scalar(text("SELECT store_name FROM tenants WHERE id = :t"), {"t": tenant_id})
    kpis = [
        Kpi(label="Revenue (GMV)", value=_money(totals["gmv"])),
        Kpi(label="Net revenue", value=_money(totals["net"])),
        Kpi(label="Orders", value=f"{totals['orders']:,}"),
        Kpi(label="Average order", value=_money(totals["aov"])),
        Kpi(label="Conversion", value=_percent(flows["purchases"] / flows["views"] if flows["views"] else None)),
        Kpi(label="Return rate", value=_percent(flows["returned"] / flows["units"] if flows["units"] else None)),
        Kpi(label="Rating", value=f"{float(rated['average']):.2f} ★ ({rated['reviews']})" if rated["reviews"] else "–"),
        Kpi(label="Stock-outs / low", value=f"{stock.get('out_of_stock', 0)} / {stock.get('low_stock', 0)}"),
        Kpi(label="Next payout", value=f"{_money(upcoming['net_payout'])} on {upcoming['payout_date']}"
            if upcoming else "–"),
    ]
    return Dashboard(
        audience="seller", tenant_id=tenant_id, title=f"{store or 'Store'}: sales dashboard",
        generated_at=datetime.now(UTC), data_through=through, start=start, end=end, product_id=filters.product_id,
        products=[ProductChoice(id=row["product_id"], title=row["product_title"]) for row in products],
        kpis=kpis, panels=[sales, _top_products(session, scope), funnel, inventory, ratings, settlements],
    )


# --- generated dashboards ------------------------------------------------------------------------

def stored_seller_dashboard(session: Session, tenant_id: uuid.UUID) -> Dashboard | None:
    """The dashboard the orchestrator last generated for the seller, if any."""
    document = session.scalar(text("SELECT document FROM analytics.seller_dashboards WHERE tenant_id = :t"),
                              {"t": tenant_id})
    return Dashboard.model_validate(document) if document is not None else None


def generate_seller_dashboards(tenant_ids: list[uuid.UUID], store: Callable[[Dashboard], None]) -> int:
    """Build each seller's default dashboard in that seller's own session (tenant isolation
    applies to the generator as well) and hand it to `store`."""
    for tenant_id in tenant_ids:
        with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
            store(build_seller_dashboard(session, tenant_id, DashboardFilters()))
    return len(tenant_ids)


# --- marketplace dashboard -----------------------------------------------------------------------

def _experiments(session: Session) -> Panel:
    """The latest experiments' rates per variant, the 95% interval of each as its error bar."""
    rows = _rows(session, "SELECT results.* FROM platform_analytics.platform_experiment_results AS results"
                          " JOIN (SELECT experiment, max(last_exposed_at) AS seen"
                          "       FROM platform_analytics.platform_experiment_results GROUP BY experiment"
                          "       ORDER BY seen DESC LIMIT :shown) AS latest USING (experiment)"
                          " ORDER BY latest.seen DESC, results.experiment, results.variant", shown=EXPERIMENTS_SHOWN
                 ) if _marts_built(session, "platform_analytics.platform_experiment_results") else []
    labels = [f"{row['experiment']} · {row['variant']}" for row in rows]
    figure = go.Figure()
    for metric, name, colour in EXPERIMENT_METRICS:
        rates = [_number(row[f"{metric}_rate"]) for row in rows]
        figure.add_bar(
            x=labels, y=rates, name=name, marker_color=colour,
            error_y={"type": "data", "symmetric": False,
                     "array": [_number(row[f"{metric}_high"]) - rate for row, rate in zip(rows, rates, strict=True)],
                     "arrayminus": [rate - _number(row[f"{metric}_low"]) for row, rate in zip(rows, rates, strict=True)]},
            customdata=[[row["users"], _percent(row[f"{metric}_low"]), _percent(row[f"{metric}_high"])] for row in rows],
            hovertemplate=f"%{{x}}: {name.lower()} %{{y:.1%}} (95%: %{{customdata[1]}} to %{{customdata[2]}},"
                          " %{customdata[0]} shoppers)<extra></extra>")
    return _panel("experiments", "A/B experiments: rates per variant with 95% intervals", figure, len(rows),
                  barmode="group", hovermode="closest", yaxis={"tickformat": ".0%", "rangemode": "tozero"})


def build_platform_dashboard(session: Session, filters: DashboardFilters) -> Dashboard:
    """The marketplace admin's dashboard, from the platform marts (platform scope only)."""
    if not _marts_built(session, "platform_analytics.platform_conversion_funnel"):
        return _awaiting_first_refresh("platform", None)
    through = session.scalar(text("SELECT max(date) FROM platform_analytics.platform_conversion_funnel"))
    end = filters.end or through or datetime.now(UTC).date()
    start = filters.start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Unprocessable("the start of the range is after its end", field="start")
    scope = {"a": start, "b": end}
    traffic = _rows(session, "SELECT date, sum(sessions) AS sessions, sum(visitors) AS visitors"
                             " FROM platform_analytics.platform_daily_traffic WHERE date BETWEEN :a AND :b"
                             " GROUP BY date ORDER BY date", **scope)
    funnel = _rows(session, "SELECT coalesce(sum(sessions), 0) AS sessions, coalesce(sum(viewing_sessions), 0) AS viewing,"
                            " coalesce(sum(carting_sessions), 0) AS carting,"
                            " coalesce(sum(purchasing_sessions), 0) AS purchasing, coalesce(sum(gmv), 0) AS gmv,"
                            " coalesce(sum(orders_paid), 0) AS orders"
                            " FROM platform_analytics.platform_conversion_funnel WHERE date BETWEEN :a AND :b",
                   **scope)[0]
    searches = _rows(session, "SELECT query, sum(searches) AS searches,"
                              " sum(searches_with_click)::numeric / nullif(sum(searches), 0) AS ctr"
                              " FROM platform_analytics.platform_search_performance WHERE date BETWEEN :a AND :b"
                              " GROUP BY query ORDER BY searches DESC LIMIT 10", **scope)
    growth = _rows(session, "SELECT month, gmv, active_sellers FROM platform_analytics.platform_marketplace_growth"
                            " WHERE month <= :b ORDER BY month", **scope)
    stock = _rows(session, "SELECT store_name, stock_out_rate FROM platform_analytics.platform_inventory_health"
                           " ORDER BY stock_out_rate DESC, store_name LIMIT 10")

    days = [row["date"] for row in traffic]
    traffic_figure = go.Figure([
        go.Scatter(x=days, y=[r["sessions"] for r in traffic], name="Sessions", line={"color": PALETTE["primary"]}),
        go.Scatter(x=days, y=[r["visitors"] for r in traffic], name="Visitors", line={"color": PALETTE["secondary"]}),
    ])
    stages = [("Sessions", funnel["sessions"]), ("Viewed a product", funnel["viewing"]),
              ("Added to cart", funnel["carting"]), ("Purchased", funnel["purchasing"])]
    funnel_figure = go.Figure(go.Funnel(y=[n for n, _ in stages], x=[v for _, v in stages],
                                        textinfo="value+percent initial"))
    search_rows = list(reversed(searches))
    search_figure = go.Figure(go.Bar(
        x=[r["searches"] for r in search_rows], y=[_short(r["query"]) for r in search_rows], orientation="h",
        marker_color=PALETTE["primary"], customdata=[_percent(r["ctr"]) for r in search_rows],
        hovertemplate="%{y}: %{x} searches, click-through %{customdata}<extra></extra>"))
    growth_figure = go.Figure([
        go.Bar(x=[r["month"] for r in growth], y=[_number(r["gmv"]) for r in growth], name="GMV",
               marker_color=PALETTE["primary"]),
        go.Scatter(x=[r["month"] for r in growth], y=[r["active_sellers"] for r in growth], name="Active sellers",
                   yaxis="y2", line={"color": PALETTE["secondary"]}),
    ])
    stock_rows = list(reversed(stock))
    stock_figure = go.Figure(go.Bar(x=[_number(r["stock_out_rate"]) for r in stock_rows],
                                    y=[_short(r["store_name"]) for r in stock_rows], orientation="h",
                                    marker_color=PALETTE["bad"]))
    return Dashboard(
        audience="platform", tenant_id=None, title="Marketplace dashboard", generated_at=datetime.now(UTC),
        data_through=through, start=start, end=end, product_id=None, products=[],
        kpis=[Kpi(label="GMV", value=_money(funnel["gmv"])), Kpi(label="Orders", value=f"{funnel['orders']:,}"),
              Kpi(label="Sessions", value=f"{funnel['sessions']:,}"),
              Kpi(label="Conversion", value=_percent(funnel["purchasing"] / funnel["sessions"]
                                                     if funnel["sessions"] else None))],
        panels=[
            _panel("traffic", "Traffic", traffic_figure, len(traffic)),
            _panel("funnel", "Conversion funnel", funnel_figure, sum(1 for _, v in stages if v), hovermode="closest"),
            _panel("search", "Top searches", search_figure, len(searches), hovermode="closest",
                   yaxis={"automargin": True}),
            _panel("growth", "Tenant activity and growth", growth_figure, len(growth),
                   yaxis2={"overlaying": "y", "side": "right", "rangemode": "tozero"}),
            _panel("inventory", "Inventory health: stock-out rate by seller", stock_figure, len(stock),
                   hovermode="closest", yaxis={"automargin": True}, xaxis={"tickformat": ".0%"}),
            _experiments(session),
        ],
    )
