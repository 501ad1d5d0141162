"""`marketlake experiments ...`: define, list, start and stop A/B experiments from a shell (the
same service as /v1/admin/experiments, acting as the platform)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

experiments_app = typer.Typer(help="A/B experiments on the serving surfaces (recommendations, search).",
                              no_args_is_help=True)
console = Console(stderr=True)
VARIANT_HELP = ("NAME:SHARE:strategy=S or NAME:SHARE:model_version=V, once per variant, in bucket order; "
                "e.g. control:0.5:strategy=hybrid")


def _variant(spec: str) -> dict[str, str]:
    try:
        name, share, serves = spec.split(":", 2)
        field, value = serves.split("=", 1)
    except ValueError:
        raise typer.BadParameter(f"'{spec}' is not {VARIANT_HELP.split(',')[0]}", param_hint="--variant") from None
    if field not in ("strategy", "model_version"):
        raise typer.BadParameter(f"'{field}' is neither strategy nor model_version", param_hint="--variant")
    return {"name": name, "share": share, field: value}


def _run(action):
    """Run `action(session)` as the platform; a refused change prints its fields and exits 1."""
    from transactional.db import PLATFORM, session_scope
    from transactional.errors import ProblemError
    from transactional.migrate import upgrade

    upgrade()
    try:
        with session_scope(PLATFORM) as session:
            return action(session)
    except ProblemError as exc:
        console.print(f"[red]{exc.detail}[/]")
        for error in exc.errors:
            console.print(f"  {error['field']}: {error['reason']}")
        raise typer.Exit(1) from exc


def _show(experiments) -> None:
    table = Table()
    for column in ("key", "surface", "status", "variants", "started", "stopped"):
        table.add_column(column, no_wrap=column != "variants")
    for experiment in experiments:
        variants = ", ".join(f"{v.name} {v.share:.0%} ({v.strategy or 'model ' + v.model_version})"
                             for v in experiment.variants)
        table.add_row(experiment.key, experiment.surface.value, experiment.status.value, variants,
                      f"{experiment.started_at:%Y-%m-%d %H:%M}" if experiment.started_at else "",
                      f"{experiment.stopped_at:%Y-%m-%d %H:%M}" if experiment.stopped_at else "")
    Console().print(table)


@experiments_app.command("list")
def list_experiments() -> None:
    """Every experiment, newest first."""
    from transactional.services.experiments import list_experiments as listed

    _show(_run(listed))


@experiments_app.command("create")
def create(
    key: str = typer.Argument(..., help="unique key, recorded in events (lowercase, digits, . _ -)"),
    surface: str = typer.Option(..., help="recommendations or search"),
    variant: list[str] = typer.Option(..., help=VARIANT_HELP),
    description: str = typer.Option("", help="what is being tested"),
) -> None:
    """Define a draft experiment (shares must sum to 1)."""
    from pydantic import ValidationError

    from transactional.services.experiments import ExperimentIn, create_experiment

    try:
        data = ExperimentIn(key=key, surface=surface, description=description,
                            variants=[_variant(spec) for spec in variant])
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]{'.'.join(map(str, error['loc']))}: {error['msg']}[/]")
        raise typer.Exit(1) from exc
    _show([_run(lambda session: create_experiment(session, data, None))])


@experiments_app.command("start")
def start(key: str = typer.Argument(..., help="the experiment's key")) -> None:
    """Start assigning shoppers (serving processes pick it up within seconds)."""
    from transactional.services.experiments import find_experiment, start_experiment

    _show([_run(lambda session: start_experiment(session, find_experiment(session, key).id))])


@experiments_app.command("stop")
def stop(key: str = typer.Argument(..., help="the experiment's key")) -> None:
    """Stop the experiment (final)."""
    from transactional.services.experiments import find_experiment, stop_experiment

    _show([_run(lambda session: stop_experiment(session, find_experiment(session, key).id))])
