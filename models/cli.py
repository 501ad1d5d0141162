"""`marketlake evaluate` (score every model on any interactions file) and `marketlake mlflow` (the UI)."""

from __future__ import annotations

import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from models.data import Interactions

console = Console(stderr=True)


class Format(str, Enum):
    csv = "csv"
    movielens = "movielens"
    sequence = "sequence"


class Protocol(str, Enum):
    leave_last_out = "leave-last-out"
    time_split = "time-split"
    kfold = "kfold"
    movielens_folds = "movielens-folds"


class RankingMode(str, Enum):
    full = "full"
    sampled = "sampled"


def evaluate(
    interactions: Path = typer.Option(
        None,
        "--interactions",
        "-i",
        exists=True,
        dir_okay=False,
        help="interactions file (plain or .gz); not needed with movielens-folds",
    ),
    input_format: Format = typer.Option(Format.csv, "--format", "-f", help="how the file is laid out"),
    protocol: Protocol = typer.Option(
        Protocol.leave_last_out,
        "--protocol",
        "-p",
        help="leave-last-out | time-split | kfold (random folds, Gorse's protocol) "
        "| movielens-folds (the GroupLens u1..u5 files under --path)",
    ),
    path: Path = typer.Option(
        None, "--path", exists=True, file_okay=False, help="folder with u1.base..u5.test (movielens-folds)"
    ),
    models: str = typer.Option(
        "all",
        help="comma-separated models to train, or all (those that apply to the "
        "data: group popularity needs groups, sasrec needs torch); a blend "
        "of them is added",
    ),
    k: int = typer.Option(10, min=1, help="cut-off of the ranking metrics"),
    ranking: RankingMode = typer.Option(
        RankingMode.full, help="full catalogue, or 1 positive + N sampled negatives"
    ),
    negatives: int = typer.Option(100, min=1, help="sampled negatives per positive (sampled ranking)"),
    folds: int = typer.Option(5, min=2, help="number of folds (kfold)"),
    seed: int = typer.Option(0, help="seed of random splits and sampled negatives"),
    blend: bool = typer.Option(True, help="add a blend of the models with weights fitted on validation"),
    output: Path = typer.Option(
        None, "--output", "-o", dir_okay=False, help="also write the table as CSV here"
    ),
    mlflow: bool = typer.Option(True, help="log the runs to MLflow"),
    register_as: str = typer.Option(None, help="register the best model (by validation) under this name"),
    data_version: list[str] = typer.Option(
        None, help="KEY=VALUE data versions to record with the runs (e.g. Delta table versions); repeatable"
    ),
) -> None:
    """Train every model on an interactions file under one protocol and print one table."""
    from models import experiment, protocols
    from models.data import load_interactions
    from models.evaluation import Scoring

    versions = dict(_key_value(item) for item in data_version or [])
    if protocol is Protocol.movielens_folds:
        if path is None:
            raise typer.BadParameter(
                "movielens-folds needs --path DIR (with u1.base .. u5.test)", param_hint="--path"
            )
        splits = protocols.movielens_folds(path)
        data_source = splits[0].train.source
    else:
        if interactions is None:
            raise typer.BadParameter("give the file to evaluate", param_hint="--interactions")
        try:
            data = load_interactions(interactions, input_format.value)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--interactions") from error
        data_source = data.source
        splits = (
            protocols.kfold(data, folds, seed)
            if protocol is Protocol.kfold
            else [protocols.split(data, protocol.value, seed=seed)]
        )
    model_names = (
        list(experiment.DEFAULT_MODELS)
        if models == "all"
        else [name.strip() for name in models.split(",") if name.strip()]
    )
    unknown = set(model_names) - set(experiment.MODEL_SPECS)
    if unknown:
        raise typer.BadParameter(
            f"unknown {sorted(unknown)}; known: {', '.join(experiment.MODEL_SPECS)}", param_hint="--models"
        )

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("evaluating", total=None)
        runs = experiment.run(
            splits,
            model_names,
            Scoring(k, ranking.value, negatives, seed),
            blend,
            progress=lambda message: bar.update(task, description=message),
        )
    evaluation = experiment.table(runs)
    _print_table(evaluation)
    if output:
        evaluation.to_csv(output, index=False)
    if mlflow:
        data_source = {**data_source, **versions}
        _log(runs, evaluation, protocol, data_source, k, ranking, negatives, seed, register_as,
             encoded=splits[0].train)


def _key_value(item: str) -> tuple[str, str]:
    key, separator, value = item.partition("=")
    if not separator or not key.strip():
        raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--data-version")
    return f"version_{key.strip()}", value.strip()


def _print_table(evaluation) -> None:
    table = Table(show_lines=False)
    for column in evaluation.columns:
        table.add_column(column, justify="left" if column in ("split", "model") else "right")
    for row in evaluation.itertuples(index=False):
        table.add_row(*(f"{value:.4f}" if isinstance(value, float) else str(value) for value in row))
    # Piped output would otherwise be cut at 80 columns.
    Console(width=max(Console().width, 180)).print(table)


def _log(
    runs,
    evaluation,
    protocol: Protocol,
    data_source: dict[str, str],
    k: int,
    ranking: RankingMode,
    negatives: int,
    seed: int,
    register_as: str | None,
    encoded: Interactions,
) -> None:
    from models import tracking

    context = {
        "protocol": protocol.value,
        "k": k,
        "ranking": ranking.value,
        "seed": seed,
        "dataset": Path(data_source.get("path", "")).name,
        **({"negatives": negatives} if ranking is RankingMode.sampled else {}),
        **{f"data_{key}": value for key, value in data_source.items()},
    }
    logged = tracking.log_evaluation(runs, evaluation, context, k, encoded=encoded)
    console.print(f"MLflow run {logged.parent_run_id} at {tracking.tracking_uri()}")
    if register_as:
        per_model = evaluation[
            evaluation["split"]
            == ("mean" if evaluation["split"].eq("mean").any() else evaluation["split"].iloc[0])
        ]
        best = per_model.loc[per_model["validation"].idxmax()]
        registration = tracking.register(
            register_as, logged.model_run_ids[best["model"]], float(best["validation"])
        )
        console.print(
            f"registered {best['model']} as {register_as} version {registration.version}: "
            f"{registration.alias}"
        )


def mlflow_ui(
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(5000, help="port to bind"),
    workers: int = typer.Option(1, min=1, help="server worker processes"),
) -> None:
    """Serve the MLflow UI over the platform's tracking store."""
    from models.tracking import experiment_id, mlflow_home, tracking_uri

    experiment_id()
    console.print(f"MLflow UI on http://{host}:{port} (store {tracking_uri()})")
    raise typer.Exit(
        subprocess.call(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                tracking_uri(),
                "--default-artifact-root",
                (mlflow_home() / "artifacts").as_uri(),
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
            ]
        )
    )
