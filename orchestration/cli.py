"""`marketlake`: one command line for every stage of the platform."""

from __future__ import annotations

import typer
from rich.console import Console

from feature_repo.cli import features_app
from models.cli import evaluate, mlflow_ui
from pipelines.cli import gdpr_app, lakehouse_app
from serving.cli import build_search_index, evaluate_search, export_search_set, serve
from transactional.config import get_settings
from transactional.datagen.cli import generate, import_app, simulate
from transactional.experiments_cli import experiments_app

app = typer.Typer(help="Marketlake: a data and ML platform for multi-tenant marketplaces.", no_args_is_help=True)
db_app = typer.Typer(help="The PostgreSQL database (embedded by default; DATABASE_URL points elsewhere).",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(lakehouse_app, name="lakehouse")
app.add_typer(gdpr_app, name="gdpr")
app.add_typer(experiments_app, name="experiments")
app.add_typer(features_app, name="features")
app.command("generate")(generate)
app.command("simulate")(simulate)
app.add_typer(import_app, name="import")
app.command("serve")(serve)
app.command("build-search-index")(build_search_index)
app.command("evaluate-search")(evaluate_search)
app.command("export-search-set")(export_search_set)
app.command("evaluate")(evaluate)
app.command("mlflow")(mlflow_ui)
inventory_app = typer.Typer(help="Stock and its reservations.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
console = Console(stderr=True)


def _embedded():
    from transactional.embedded_pg import EmbeddedPostgres

    settings = get_settings()
    if settings.database_url:
        console.print("[yellow]DATABASE_URL is set: the embedded server is not used.[/]")
        raise typer.Exit(0)
    return EmbeddedPostgres.from_settings(settings)


@db_app.command("start")
def db_start() -> None:
    """Initialise (first time) and start the embedded PostgreSQL server."""
    url = _embedded().start()
    console.print(f"PostgreSQL running: {url}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    console.print("stopped" if _embedded().stop() else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded server runs (exit 1 when it does not)."""
    server = _embedded()
    running = server.is_running()
    console.print(f"{'running' if running else 'stopped'}: {server.url} (data in {server.pgdata})")
    raise typer.Exit(0 if running else 1)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL the platform uses."""
    from transactional.embedded_pg import database_url

    print(database_url(get_settings(), start=False))


@db_app.command("migrate")
def db_migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to")) -> None:
    """Apply Alembic migrations (starting the embedded server when needed)."""
    from transactional.migrate import upgrade

    upgrade(revision)
    console.print(f"database migrated to {revision}")


@inventory_app.command("release-expired")
def inventory_release_expired() -> None:
    """Release stock reservations past their time to live (the API also does this periodically)."""
    from transactional.services.inventory import release_expired_now

    with console.status("releasing expired reservations"):
        released = release_expired_now()
    console.print(f"released {released} expired reservation(s)")


@app.command("create-admin")
def create_admin(
    email: str = typer.Option(..., help="login email of the platform administrator"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="at least 8 characters"),
) -> None:
    """Create a platform administrator (manages categories, tenants and moderation)."""
    from transactional.db import PLATFORM, session_scope
    from transactional.errors import ProblemError
    from transactional.migrate import upgrade
    from transactional.models import Role
    from transactional.services.auth import register_user

    if len(password) < 8:
        raise typer.BadParameter("the password needs at least 8 characters", param_hint="--password")
    upgrade()
    try:
        with session_scope(PLATFORM) as session:
            user = register_user(session, email=email, password=password, role=Role.platform_admin)
    except ProblemError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    console.print(f"platform admin {user.email} created ({user.id})")


@app.command("demo")
def demo(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="keep serving after loading (Ctrl-C stops)"),
    scale: str = typer.Option("small", help="generated marketplace size: tiny|small|medium|large|N"),
    seed: int = typer.Option(7, help="generator and simulator seed"),
    shoppers: int = typer.Option(8, min=1, help="simulated shoppers during the demo"),
    simulate_seconds: float = typer.Option(20, min=1, help="length of the live-traffic simulation"),
    port: int = typer.Option(8000, help="port of the transactional API"),
) -> None:
    """Start embedded PostgreSQL, migrate, load a demo marketplace, drive live traffic, build the lakehouse
    and train the recommender, then serve."""
    from orchestration.demo import run_demo

    run_demo(serve=serve, scale=scale, seed=seed, shoppers=shoppers, simulate_seconds=simulate_seconds,
             api_port=port, console=console)


@app.command("dagster")
def dagster_ui(
    host: str = typer.Option("127.0.0.1", help="interface of the Dagster UI"),
    port: int = typer.Option(3000, help="port of the Dagster UI"),
) -> None:
    """Serve the Dagster UI with its daemon (sensors, schedules) on every pipeline's definitions."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from orchestration.resources import prepare_dagster_home
    from transactional.migrate import upgrade

    upgrade()
    home = prepare_dagster_home()
    root = Path(__file__).resolve().parents[1]
    console.print(f"Dagster UI on http://{host}:{port}  (DAGSTER_HOME={home})")
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(root / "workspace.yaml"),
               "-h", host, "-p", str(port)]
    raise typer.Exit(subprocess.call(command, cwd=root, env={**os.environ, "DAGSTER_HOME": str(home)}))


@app.command("api")
def api(
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8000, help="port to bind"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
) -> None:
    """Serve the transactional API (OpenAPI at /docs and /openapi.json)."""
    import uvicorn

    from transactional.migrate import upgrade

    upgrade()
    console.print(f"API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("transactional.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning")


if __name__ == "__main__":
    app()
