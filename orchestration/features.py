"""Feature store: the gold feature snapshots exported for Feast's offline store, `feast apply` of
feature_repo/, and incremental materialisation of the newest values into the online store, all
downstream of the gold feature tables (run by the `features` job, after a refresh)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from orchestration.lakehouse import gold_key
from orchestration.resources import RETRY
from pipelines.features import FEATURE_TABLES

GROUP = "features"
OFFLINE = dg.AssetKey(["feast", "offline_features"])
REGISTRY = dg.AssetKey(["feast", "registry"])
ONLINE = dg.AssetKey(["feast", "online_store"])


@dg.asset(key=OFFLINE, group_name=GROUP, deps=[gold_key(name) for name in FEATURE_TABLES], kinds={"parquet"},
          retry_policy=RETRY, description="The gold feature tables as Parquet files, Feast's offline store.")
def offline_features() -> dg.MaterializeResult:
    from feature_repo.store import FeastSettings
    from pipelines.features import export_feature_tables

    rows = export_feature_tables(FeastSettings().offline_path())
    return dg.MaterializeResult(metadata={f"{name} rows": count for name, count in rows.items()})


@dg.asset(key=REGISTRY, group_name=GROUP, deps=[OFFLINE], kinds={"feast"}, retry_policy=RETRY,
          description="`feast apply` of feature_repo/: entities, views, services, online tables.")
def feature_registry() -> dg.MaterializeResult:
    from feature_repo.store import apply, feature_store

    store = feature_store()
    apply(store)
    return dg.MaterializeResult(metadata={
        "feature views": ", ".join(sorted(view.name for view in store.list_feature_views())),
        "feature services": ", ".join(sorted(service.name for service in store.list_feature_services()))})


@dg.asset(key=ONLINE, group_name=GROUP, deps=[REGISTRY], kinds={"feast"}, retry_policy=RETRY,
          description="Incremental materialisation: each entity's newest snapshot since the last run.")
def online_features() -> dg.MaterializeResult:
    from feature_repo.store import feature_store

    store = feature_store()
    until = datetime.now(UTC)
    store.materialize_incremental(end_date=until)
    return dg.MaterializeResult(metadata={"online store": store.config.online_store.type,
                                          "materialised until": until.isoformat()})


features_job = dg.define_asset_job(
    "features", selection=dg.AssetSelection.groups(GROUP),
    description="Export gold feature snapshots, apply the Feast repository, materialise the online store.")

defs = dg.Definitions(assets=[offline_features, feature_registry, online_features], jobs=[features_job])
