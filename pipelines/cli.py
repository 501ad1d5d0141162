"""`marketlake lakehouse ...` and `marketlake gdpr ...` (registered in orchestration/cli.py).

Spark and the jobs are imported inside each command so `--help` stays instant."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

lakehouse_app = typer.Typer(help="The Delta lakehouse: bronze change data, silver and gold tables, quality gates.",
                            no_args_is_help=True)
gdpr_app = typer.Typer(help="Data-subject requests: erase or export everything held about a user.",
                       no_args_is_help=True)
console = Console(stderr=True)


class FeedChoice(str, enum.Enum):
    all = "all"
    outbox = "outbox"
    shopper_events = "shopper_events"


def _feeds(choice: FeedChoice):
    from pipelines.bronze import FEEDS

    return FEEDS if choice is FeedChoice.all else (choice.value,)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


@contextmanager
def _problems() -> Iterator[None]:
    """Bad input or a conflict: a one-line message and exit code 2, not a traceback."""
    from transactional.errors import ProblemError

    try:
        yield
    except ProblemError as error:
        console.print(f"[red]{error.detail}[/]")
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    transient=True)


@lakehouse_app.command("ingest")
def ingest(
    feed: FeedChoice = typer.Option(FeedChoice.all, help="which change feed to ingest"),
    batch_size: int = typer.Option(None, min=1, help="rows per micro-batch (one Delta commit each)"),
) -> None:
    """Ingest every settled change from PostgreSQL into bronze once, exactly once, then stop."""
    from pipelines import bronze
    from pipelines.engine import get_spark

    with _problems(), _progress() as progress:
        task = progress.add_task("starting Spark", total=None)
        spark = get_spark()

        def show(report) -> None:
            progress.update(task, description=f"{report.feed}: {report.rows} rows in {report.batches} batches")

        reports = bronze.ingest(spark, _feeds(feed), batch_size=batch_size, on_batch=show)
    _print_json([report.summary() for report in reports])


@lakehouse_app.command("stream")
def stream(
    interval: float = typer.Option(None, min=0.1, help="seconds between micro-batches (default from settings)"),
    duration: float = typer.Option(None, min=0, help="stop after this many seconds (default: run until Ctrl-C)"),
    batch_size: int = typer.Option(None, min=1, help="rows per micro-batch"),
) -> None:
    """Ingest continuously, every few seconds, reporting freshness (PostgreSQL commit -> bronze)."""
    from pipelines import bronze
    from pipelines.engine import get_spark
    from pipelines.settings import lakehouse_settings

    pause = interval or lakehouse_settings().stream_interval_seconds
    spark = get_spark()
    deadline = time.monotonic() + duration if duration is not None else None
    totals: dict[str, bronze.FeedReport] = {}
    try:
        while deadline is None or time.monotonic() < deadline:
            for report in bronze.ingest(spark, batch_size=batch_size):
                total = totals.setdefault(report.feed, bronze.FeedReport(report.feed))
                total.rows += report.rows
                total.batches += report.batches
                total.seconds += report.seconds
                total.lags.extend(report.lags)
                total.position = report.position
                if report.rows:
                    fresh = report.freshness()
                    console.print(f"{report.feed}: +{report.rows} rows, freshness p50 {fresh['p50']}s "
                                  f"p95 {fresh['p95']}s")
            time.sleep(pause)
    except KeyboardInterrupt:
        pass
    _print_json([total.summary() for total in totals.values()])


@lakehouse_app.command("silver")
def build_silver() -> None:
    """Bring the silver tables up to date with bronze (idempotent upserts on business keys)."""
    from pipelines import silver
    from pipelines.engine import get_spark

    with _progress() as progress:
        progress.add_task("building silver", total=None)
        report = silver.build_silver(get_spark())
    _print_json({"changes": report.changes, "events": report.events, "tables": report.tables})


@lakehouse_app.command("gold")
def build_gold() -> None:
    """Recompute the gold tables and publish those whose quality gates pass (exit 1 if any is held back)."""
    from pipelines import gold
    from pipelines.engine import get_spark

    with _progress() as progress:
        progress.add_task("validating and building gold", total=None)
        report = gold.build_gold(get_spark())
    _print_json(report.summary())
    for table, reasons in report.blocked.items():
        console.print(f"[red]gold.{table} not published[/]: " + "; ".join(reasons))
    raise typer.Exit(1 if report.blocked else 0)


@lakehouse_app.command("run")
def run_all(batch_size: int = typer.Option(None, min=1, help="rows per bronze micro-batch")) -> None:
    """Ingest into bronze, bring silver up to date, then validate and publish gold."""
    from pipelines import bronze, gold, silver
    from pipelines.engine import get_spark

    with _progress() as progress:
        task = progress.add_task("ingesting bronze", total=None)
        spark = get_spark()
        ingested = bronze.ingest(spark, batch_size=batch_size)
        progress.update(task, description="building silver")
        built = silver.build_silver(spark)
        progress.update(task, description="validating and building gold")
        published = gold.build_gold(spark)
    _print_json({"bronze": [report.summary() for report in ingested],
                 "silver": {"changes": built.changes, "events": built.events, "tables": built.tables},
                 "gold": published.summary()})
    raise typer.Exit(1 if published.blocked else 0)


@gdpr_app.command("erase")
def gdpr_erase(user: str = typer.Option(..., "--user", help="the user's id")) -> None:
    """Anonymise the user in PostgreSQL, then remove their rows from every lakehouse table,
    old file versions included. Safe to repeat."""
    from pipelines.engine import get_spark
    from pipelines.gdpr import erase_from_lakehouse
    from transactional.db import owner_engine
    from transactional.services import gdpr

    with _problems(), _progress() as progress:
        progress.add_task(f"erasing {user}", total=None)
        user_id = gdpr.parse_user_id(user)
        with owner_engine().begin() as connection:
            anonymised = gdpr.anonymise_user(connection, user_id)
        report = erase_from_lakehouse(get_spark(), user_id)
    _print_json({"user_id": report.user_id, "postgres_rows_anonymised": anonymised, "rows_removed": report.tables,
                 "files_vacuumed": report.vacuumed_files})


@gdpr_app.command("export")
def gdpr_export(
    user: str = typer.Option(..., "--user", help="the user's id"),
    out: Path = typer.Option(Path("gdpr-export"), help="directory to write the export into"),
) -> None:
    """Write everything held about the user (PostgreSQL and lakehouse) as JSON files, one per
    table, with a manifest."""
    from pipelines.engine import get_spark
    from pipelines.gdpr import export_from_lakehouse
    from transactional.db import owner_engine
    from transactional.services import gdpr

    with _problems(), _progress() as progress:
        progress.add_task(f"exporting {user}", total=None)
        user_id = gdpr.parse_user_id(user)
        with owner_engine().begin() as connection:
            held = {f"postgres.{table}": rows for table, rows in gdpr.export_user(connection, user_id).items()}
        held |= {f"lakehouse.{table}": rows for table, rows in export_from_lakehouse(get_spark(), user_id).items()}
        counts = _write_export(out, held)
        (out / "manifest.json").write_text(json.dumps({"user_id": str(user_id), "files": counts}, indent=2))
    _print_json({"user_id": str(user_id), "directory": str(out), "files": counts})


def _write_export(destination: Path, held: dict[str, list]) -> dict[str, int]:
    destination.mkdir(parents=True, exist_ok=True)
    for name, rows in held.items():
        (destination / f"{name}.json").write_text(json.dumps(rows, indent=2, default=str))
    return {name: len(rows) for name, rows in held.items()}


def _as_of(value: str | None) -> dict:
    """`--as-of 12` is a table version; anything else an ISO timestamp."""
    if value is None:
        return {}
    if value.isdigit():
        return {"version": int(value)}
    from datetime import datetime

    try:
        return {"timestamp": datetime.fromisoformat(value)}
    except ValueError:
        raise typer.BadParameter("a version number or an ISO timestamp", param_hint="--as-of") from None


@lakehouse_app.command("show")
def show(
    table: str = typer.Argument(..., help="layer.table, e.g. silver.products"),
    as_of: str = typer.Option(None, "--as-of", help="a version number or ISO timestamp (time travel)"),
    limit: int = typer.Option(20, min=0, help="rows to print (0: only the count)"),
    where: str = typer.Option(None, help="a SQL filter, e.g. \"tenant_id = '...'\""),
) -> None:
    """Print a table's rows as JSON, now or as of an earlier version or time."""
    from pipelines import tables
    from pipelines.engine import get_spark

    try:
        uri = tables.table_uri(*tables.parse_table_name(table))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="TABLE") from None
    if not tables.exists(uri):
        raise typer.BadParameter(f"{table} does not exist yet", param_hint="TABLE")
    frame = tables.read(get_spark(), uri, **_as_of(as_of))
    if where:
        frame = frame.where(where)
    rows = [row.asDict(recursive=True) for row in frame.limit(limit).collect()] if limit else []
    _print_json({"table": table, "as_of": as_of, "count": frame.count(), "rows": rows})


@lakehouse_app.command("history")
def history(table: str = typer.Argument(..., help="layer.table, e.g. silver.products")) -> None:
    """List a table's versions (for --as-of): version, time, operation."""
    from pipelines import tables

    try:
        uri = tables.table_uri(*tables.parse_table_name(table))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="TABLE") from None
    if not tables.exists(uri):
        raise typer.BadParameter(f"{table} does not exist yet", param_hint="TABLE")
    _print_json([{"version": c.get("version"), "timestamp": c.get("timestamp"), "operation": c.get("operation")}
                 for c in tables.delta_table(uri).history()])


@lakehouse_app.command("maintain")
def maintain(
    retention_hours: float = typer.Option(168, min=0, help="keep file versions this long (time travel window)"),
) -> None:
    """Compact small files and vacuum every table, keeping `retention_hours` of history."""
    from datetime import timedelta

    from pipelines import tables

    results = []
    with _progress() as progress:
        task = progress.add_task("maintaining", total=None)
        for layer, name, uri in tables.all_tables():
            progress.update(task, description=f"compacting {layer}.{name}")
            compacted = tables.compact(uri)
            removed = tables.vacuum(uri, timedelta(hours=retention_hours))
            results.append({"table": f"{layer}.{name}", "files_compacted": compacted.get("numFilesRemoved", 0),
                            "files_vacuumed": len(removed)})
    _print_json(results)
