"""Every Dagster definition of the platform (loaded by workspace.yaml / `marketlake dagster`):
one module per stage, merged. Later stages (features, training, serving) attach the same way:
a module exposing `defs`, added to STAGES."""

from __future__ import annotations

import dagster as dg

from orchestration import automation, dashboards, dbt, features, ingestion, lakehouse, training, warehouse
from orchestration.resources import resources

STAGES = (ingestion, lakehouse, warehouse, dbt, dashboards, automation, features, training)

defs = dg.Definitions.merge(
    *(stage.defs for stage in STAGES),
    # One process per run: every step shares the run's Spark session (the embedded Sail server
    # starts once) and the steps run in graph order anyway.
    dg.Definitions(resources=resources(), executor=dg.in_process_executor),
)
