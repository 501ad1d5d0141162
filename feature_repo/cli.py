"""`marketlake features ...` (registered in orchestration/cli.py). Feast is imported inside each
command so `--help` stays instant."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

features_app = typer.Typer(
    help="The Feast feature store: definitions in feature_repo/, online and offline features.",
    no_args_is_help=True)
console = Console(stderr=True)
MOMENT_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    transient=True)


def _export(progress: Progress) -> dict[str, int]:
    """Refresh the Parquet exports of the gold feature tables Feast's offline store reads."""
    from feature_repo.store import FeastSettings
    from pipelines.features import export_feature_tables

    progress.add_task("exporting the gold feature tables", total=None)
    return export_feature_tables(FeastSettings().offline_path())


@features_app.command("apply")
def apply_definitions() -> None:
    """Register entities, feature views and services (`feast apply`) and create the online tables."""
    from feature_repo.store import apply, feature_store

    with _progress() as progress:
        exported = _export(progress)
        progress.add_task("applying feature_repo/", total=None)
        store = feature_store()
        apply(store)
    print(json.dumps({"exported_rows": exported,
                      "feature_views": sorted(view.name for view in store.list_feature_views()),
                      "feature_services": sorted(service.name for service in store.list_feature_services())},
                     indent=2))


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


@features_app.command("materialize")
def materialize(
    end: datetime = typer.Option(None, formats=MOMENT_FORMATS,
                                 help="load snapshots up to this UTC time (default: now)"),
    start: datetime = typer.Option(
        None, formats=MOMENT_FORMATS,
        help="reload from this UTC time (a backfill); default: from where the last run stopped"),
) -> None:
    """Load the newest feature values into the online store (incrementally unless --start is given)."""
    from feature_repo.store import feature_store

    until, since = _utc(end) or datetime.now(UTC), _utc(start)
    if since and since >= until:
        raise typer.BadParameter("must be before --end", param_hint="--start")
    with _progress() as progress:
        exported = _export(progress)
        progress.add_task("materialising into the online store", total=None)
        store = feature_store()
        if not store.list_feature_views():
            console.print("[red]no feature views registered: run `marketlake features apply` first[/]")
            raise typer.Exit(1)
        if since:
            store.materialize(start_date=since, end_date=until)
        else:
            store.materialize_incremental(end_date=until)
    print(json.dumps({"exported_rows": exported, "online_store": store.config.online_store.type,
                      "from": since.isoformat() if since else "last run", "until": until.isoformat()},
                     indent=2))
