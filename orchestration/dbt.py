"""dbt: the staging, intermediate and mart models as assets (dagster-dbt). dbt's sources are the
warehouse assets; every dbt test is an asset check, and a failing test stops `dbt build` before
the models that read the tested one, and the run before the dashboards."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.resources import dbt_project
from orchestration.warehouse import warehouse_key


class MarketlakeTranslator(DagsterDbtTranslator):
    """Sources are the warehouse tables loaded from the lakehouse; models are keyed and grouped by
    the schema they build in (seller_analytics/seller_daily_sales, ...)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return warehouse_key(dbt_resource_props["name"])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["schema"]


TRANSLATOR = MarketlakeTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
PROJECT = dbt_project()


# No retries: a dbt failure is a failing test or a broken model, which a rerun does not fix.
@dbt_assets(manifest=PROJECT.manifest_path, project=PROJECT, dagster_dbt_translator=TRANSLATOR)
def analytics_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the selected models: each model, then its tests."""
    yield from dbt.cli(["build"], context=context).stream()


def mart_keys(schema: str) -> list[dg.AssetKey]:
    return [key for key in analytics_models.keys if key.path[0] == schema]


defs = dg.Definitions(assets=[analytics_models])
