"""Dashboards: after every refresh of the seller marts, each active seller's dashboard is
generated (in that seller's own row-level-security session) and stored for the API to serve at
/seller/dashboard."""

import dagster as dg
from sqlalchemy import text

from orchestration.dbt import mart_keys
from orchestration.resources import RETRY, PlatformDatabase
from transactional.services.dashboards import Dashboard, generate_seller_dashboards

GROUP = "dashboards"
SELLER_DASHBOARDS = dg.AssetKey(["dashboards", "seller_dashboards"])

_STORE = text(
    "INSERT INTO analytics.seller_dashboards (tenant_id, generated_at, data_through, document)"
    " VALUES (:tenant_id, :generated_at, :data_through, CAST(:document AS jsonb))"
    " ON CONFLICT (tenant_id) DO UPDATE SET generated_at = excluded.generated_at,"
    " data_through = excluded.data_through, document = excluded.document"
)


@dg.asset(key=SELLER_DASHBOARDS, group_name=GROUP, deps=mart_keys("seller_analytics"), retry_policy=RETRY,
          kinds={"plotly", "postgres"},
          description="Every active seller's dashboard (revenue, products, funnel, inventory, ratings, settlement).")
def seller_dashboards(context: dg.AssetExecutionContext, database: PlatformDatabase) -> dg.MaterializeResult:
    engine = database.engine()
    with engine.connect() as connection:
        tenant_ids = list(connection.scalars(text("SELECT id FROM tenants WHERE status = 'active' ORDER BY id")))
    empty_panels = 0

    def store(dashboard: Dashboard) -> None:
        nonlocal empty_panels
        empty_panels += sum(1 for panel in dashboard.panels if not panel.points)
        with engine.begin() as connection:
            connection.execute(_STORE, {"tenant_id": dashboard.tenant_id, "generated_at": dashboard.generated_at,
                                        "data_through": dashboard.data_through,
                                        "document": dashboard.model_dump_json()})

    generated = generate_seller_dashboards(tenant_ids, store)
    context.log.info(f"generated {generated} seller dashboards")
    return dg.MaterializeResult(metadata={"sellers": generated, "empty_panels": empty_panels})


defs = dg.Definitions(assets=[seller_dashboards])
