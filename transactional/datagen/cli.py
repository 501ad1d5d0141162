"""Command-line entry points for marketplace data (registered by orchestration.cli):
`marketlake generate`, `marketlake import olist|interactions`, `marketlake simulate`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
import_app = typer.Typer(help="Import real data sets (validated first: a bad file writes nothing).",
                         no_args_is_help=True)


def _parse_scale(value: str) -> str:
    from transactional.datagen.model import resolve_scale

    try:
        resolve_scale(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


def _table(title: str, rows: dict[str, object]) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


def _rejected(exc: Exception) -> None:
    console.print(f"[red]{exc}[/]")
    raise typer.Exit(1)


def generate(
    scale: str = typer.Option("small", callback=_parse_scale,
                              help="tiny | small | medium | large, or a product count"),
    seed: int = typer.Option(42, help="the same seed gives the same marketplace, byte for byte"),
    load: bool = typer.Option(True, help="write it through the platform's services (--no-load: generate only)"),
    out: Path | None = typer.Option(None, help="also save the generated tables (Arrow IPC) in this directory"),
    progress: bool = typer.Option(True, help="show progress bars"),
) -> None:
    """Generate a whole marketplace (tenants, catalog, stock, buyers, orders, reviews, shopper
    events) from the documented behaviour model and load it through the services."""
    from transactional.datagen import generate_and_load, generate_marketplace
    from transactional.migrate import upgrade

    if out is not None:
        generate_marketplace(scale, seed).save(out)
        console.print(f"tables saved in {out}")
    if load:
        upgrade()
    summary = generate_and_load(scale, seed, progress=progress, load=load)
    console.print(_table(f"marketplace {summary.scale} (seed {seed}): generated in {summary.generate_seconds}s",
                         summary.rows))
    if summary.load is not None:
        console.print(_table("written (0 = already there)", summary.load.written))
        console.print(f"load seconds: {summary.load.seconds}")
        console.print(f"every generated account signs in with the password [bold]{summary.password}[/]")
    console.print(f"fingerprint {summary.fingerprint}")


@import_app.command("olist")
def import_olist_command(
    path: Path = typer.Option(..., exists=True, file_okay=False, help="directory with Olist's CSV files (.csv or .csv.gz)"),
    max_sellers: int | None = typer.Option(None, min=1, help="only the first N sellers (catalog-only set)"),
    progress: bool = typer.Option(True, help="show progress bars"),
) -> None:
    """Import the Olist Brazilian e-commerce data set: sellers as tenants, the catalog, and (when
    the order files are there) orders, payments and reviews as history."""
    from transactional.datagen.olist import import_olist
    from transactional.datagen.progress import progress_bars
    from transactional.datagen.validation import ImportRejected
    from transactional.migrate import upgrade

    upgrade()
    try:
        with progress_bars(progress) as bars:
            summary = import_olist(path, bars, max_sellers=max_sellers)
    except (ImportRejected, ValueError) as exc:
        _rejected(exc)
    console.print(_table("written (0 = already there)", summary.written))


class InteractionFormat(StrEnum):
    csv = "csv"
    movielens = "movielens"
    sequence = "sequence"


@import_app.command("interactions")
def import_interactions_command(
    path: Path = typer.Option(..., exists=True, dir_okay=False, help="the file (.gz is read transparently)"),
    format: InteractionFormat = typer.Option(..., "--format", help="csv | movielens | sequence"),  # noqa: A002
    dataset: str | None = typer.Option(None, help="data set name (default: from the file name)"),
    progress: bool = typer.Option(True, help="show progress bars"),
) -> None:
    """Import user-item interactions (user, item, time, weight) into external_interactions for
    training and evaluation; the data set is replaced atomically, a re-run is a no-op."""
    from transactional.datagen.interactions import import_interactions
    from transactional.datagen.progress import progress_bars
    from transactional.datagen.validation import ImportRejected
    from transactional.db import PLATFORM, session_scope
    from transactional.migrate import upgrade

    upgrade()
    try:
        with progress_bars(progress) as bars, session_scope(PLATFORM) as session:
            result = import_interactions(session, path=path, fmt=format.value, dataset=dataset, progress=bars)
    except (ImportRejected, ValueError) as exc:
        _rejected(exc)
    console.print(_table(f"data set {result.dataset}: {result.status}", result.model_dump(exclude={"dataset", "status"})))


def _parse_dataset(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    scale, _, seed = value.partition(":")
    if not seed.isdigit():
        raise typer.BadParameter("give SCALE:SEED, e.g. small:42")
    return _parse_scale(scale), int(seed)


def simulate(
    shoppers: int = typer.Option(10, min=1, help="concurrent simulated shoppers"),
    duration: float = typer.Option(30, min=1, help="seconds to run"),
    rate: float | None = typer.Option(None, min=0.1, help="cap on requests per second, all clients together"),
    seed: int = typer.Option(0, help="seeds the shoppers' preferences and choices"),
    api: str = typer.Option("http://127.0.0.1:8000", help="base URL of the running API"),
    dataset: str | None = typer.Option("small:42", callback=_parse_dataset,
                                       help="SCALE:SEED of the generated marketplace whose sellers' staff pack and ship"),
    search_api: str | None = typer.Option(None, help="base URL of the search API, if served separately"),
    think: float = typer.Option(0.2, min=0, help="mean seconds a shopper pauses between actions"),
) -> None:
    """Run simulated shoppers (and sellers' staff) against the running API; report requests/s,
    errors and latency percentiles per endpoint (JSON on stdout)."""
    import httpx

    from transactional.datagen.simulator import SimulationError, run_simulation

    try:
        report = run_simulation(api, shoppers=shoppers, duration=duration, seed=seed, rate=rate, dataset=dataset,
                                search_url=search_api, think_seconds=think)
    except (SimulationError, httpx.TransportError) as exc:
        console.print(f"[red]cannot simulate against {api}: {exc or type(exc).__name__}[/]")
        raise typer.Exit(1) from exc
    table = Table(title=f"{report.requests} requests in {report.seconds}s = {report.requests_per_second}/s,"
                        f" {report.errors} errors ({report.server_errors} server)")
    for column in ("endpoint", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for name, stats in report.endpoints.items():
        table.add_row(name, str(stats.requests), str(stats.errors), str(stats.p50_ms), str(stats.p95_ms), str(stats.p99_ms))
    console.print(table)
    print(report.model_dump_json(indent=2))
