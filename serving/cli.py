"""CLI commands of the serving API (registered on `marketlake` by orchestration.cli)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8001, help="port to bind"),
    workers: int = typer.Option(1, help="uvicorn worker processes (each holds its own index in memory)"),
) -> None:
    """Serve the search (and recommendation) API; the index loads in the background (see /readyz)."""
    import uvicorn

    from transactional.migrate import upgrade

    upgrade()
    console.print(f"serving API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning")


def build_search_index() -> None:
    """Build the search index from the database and save it as the snapshot servers start from.
    Products whose text is unchanged since the last snapshot keep their vectors (no re-embedding)."""
    from serving.config import get_search_settings
    from serving.search import snapshot
    from serving.search.catalog_source import count_browsable
    from serving.search.service import SearchService
    from transactional.db import owner_engine
    from transactional.migrate import upgrade

    upgrade()
    service = SearchService(get_search_settings())
    with owner_engine().connect() as connection:
        total = count_browsable(connection)
    with _progress() as progress:
        task = progress.add_task("indexing products", total=total)
        service.build(progress=lambda done: progress.advance(task, done),
                      reuse=snapshot.load(service.snapshot_dir))
    service.save_snapshot()
    console.print(f"{len(service.engine.index)} products indexed; snapshot in {service.snapshot_dir}")


class LabelSource(StrEnum):
    structure = "structure"
    sessions = "sessions"


def export_search_set(
    out: Path = typer.Option(..., help="directory for products.jsonl, queries.csv, judgments.csv"
                                       " (+ interactions.csv)"),
    source: LabelSource = typer.Option(LabelSource.sessions, help="structure: catalog vocabulary; "
                                       "sessions: what shoppers did after searching"),
    max_queries: int = typer.Option(2000, min=1, help="queries to sample"),
    test_share: float = typer.Option(0.2, min=0.01, max=1.0,
                                     help="sessions: latest share of searches used as queries"),
    seed: int = typer.Option(0, help="sampling seed"),
) -> None:
    """Export a labelled search set from the live database, for `marketlake evaluate-search`."""
    from serving.search.labelled_export import export_session_set, export_structure_set
    from transactional.db import owner_engine

    with owner_engine().connect() as connection:
        if source == LabelSource.structure:
            summary = export_structure_set(connection, out, max_queries, seed)
        else:
            summary = export_session_set(connection, out, max_queries, test_share, seed)
    console.print(f"{summary.products} products, {summary.queries} queries, {summary.judgments} judgments, "
                  f"{summary.interactions} interactions written to {out}")


def evaluate_search(
    products: Path = typer.Option(..., exists=True, dir_okay=False,
                                  help="JSONL or CSV: id,title,description,category,brand,price"),
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="JSONL or CSV: id,text[,user]"),
    judgments: Path = typer.Option(..., exists=True, dir_okay=False,
                                   help="JSONL or CSV: query_id,product_id,grade"),
    interactions: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                             help="JSONL or CSV: user,product_id,weight (shopper history)"),
    k: int = typer.Option(10, min=1, help="nDCG cut-off"),
    output: Path | None = typer.Option(None, help="also write the scores as JSON here"),
) -> None:
    """Score BM25, semantic, hybrid and personalised hybrid search on a labelled set (nDCG@k)."""
    from serving.config import get_search_settings
    from serving.search.evaluation import MODES, FileProblem, labelled_engine, read_labelled_set, score_modes
    from serving.search.vectors import limit_compute_threads, shared_embedder

    limit_compute_threads(get_search_settings().compute_threads)
    try:
        labelled = read_labelled_set(products, queries, judgments, interactions)
    except FileProblem as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    judged = sum(query.id in labelled.judgments for query in labelled.queries)
    with _progress() as progress:
        indexing = progress.add_task("indexing products", total=len(labelled.products))
        searching = progress.add_task("searching", total=judged * len(MODES))
        engine = labelled_engine(labelled, shared_embedder(), get_search_settings(),
                                 progress=lambda done: progress.advance(indexing, done))
        scores = score_modes(engine, labelled, k, progress=lambda done: progress.advance(searching, done))
    table = Table(title=f"{judged} judged queries, {len(labelled.products)} products")
    for column in ("mode", f"nDCG@{k}", "recall@100", "zero results", "queries scored"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for score in scores:
        table.add_row(score.mode, f"{score.ndcg:.4f}", f"{score.recall:.4f}", f"{score.zero_results:.1%}",
                      str(score.queries))
    Console().print(table)
    if output:
        output.write_text(json.dumps([score.__dict__ for score in scores], indent=2))
