"""`marketlake demo`: the whole platform on embedded defaults, from an empty machine to serving."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from orchestration.processes import Service, running

COUNTED_TABLES = ["tenants", "products", "skus", "users", "orders", "payments", "reviews", "shopper_events", "outbox"]


@dataclass(frozen=True)
class UserInterface:
    """A service the demo keeps running: how to start it and where a person opens it."""

    title: str
    command: list[str]
    port: int
    health_path: str
    open_path: str

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def service(self, log_dir: Path) -> Service:
        return Service(self.command, self.url(self.health_path), log_path=log_dir / f"{self.command[3]}.log")


def user_interfaces(api_port: int) -> list[UserInterface]:
    cli = [sys.executable, "-m", "orchestration.cli"]
    return [
        UserInterface("Transactional API", [*cli, "api", "--port", str(api_port)], api_port, "/healthz", "/docs"),
        UserInterface("Search & recommendations API", [*cli, "serve", "--port", "8001"], 8001, "/healthz", "/docs"),
        UserInterface("MLflow", [*cli, "mlflow", "--port", "5000"], 5000, "/health", "/"),
        UserInterface("Dagster", [*cli, "dagster", "--port", "3000"], 3000, "/server_info", "/"),
    ]


def marketplace_counts() -> dict[str, int]:
    from transactional.db import owner_engine

    with owner_engine().connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTED_TABLES}


def train_recommender() -> str:
    """Bronze -> silver -> gold -> a registered recommender, as the Dagster `train` job run in the
    instance the Dagster UI shows, so serving has a champion and the UI the run's lineage."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.resources import prepare_dagster_home
    from orchestration.training import REGISTERED_KEY

    with dg.DagsterInstance.from_config(str(prepare_dagster_home())) as instance:
        # The step events stay in the Dagster UI; the console shows what the steps themselves say.
        result = defs.resolve_job_def("train").execute_in_process(
            instance=instance, run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})
    registered = next(event.materialization.metadata for event in result.get_asset_materialization_events()
                      if event.asset_key == REGISTERED_KEY)
    return (f"recommender: {registered['model'].value} registered as {registered['registered_model'].value} "
            f"version {registered['version'].value} ({registered['alias'].value}), "
            f"validation NDCG@10 {registered['validation_ndcg'].value:.3f}")


def run_demo(*, serve: bool, scale: str, seed: int, shoppers: int, simulate_seconds: float, api_port: int,
             console: Console) -> None:
    from transactional.config import get_settings
    from transactional.datagen import generate_and_load, run_simulation
    from transactional.datagen.generator import seller_admin_emails
    from transactional.datagen.loader import DEMO_PASSWORD
    from transactional.embedded_pg import database_url
    from transactional.migrate import upgrade

    console.rule("1/5 database")
    console.print(f"PostgreSQL: {database_url(get_settings())}")
    upgrade()
    console.rule(f"2/5 marketplace (scale {scale}, seed {seed})")
    generated = generate_and_load(scale, seed, progress=True)
    console.print(f"generated in {generated.generate_seconds}s (fingerprint {generated.fingerprint[:12]})")

    log_dir = get_settings().home_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    api, *others = user_interfaces(api_port)
    with running([api.service(log_dir)]):
        console.rule(f"3/5 live traffic: {shoppers} simulated shoppers for {simulate_seconds:.0f}s")
        report = run_simulation(api.url(""), shoppers=shoppers, duration=simulate_seconds, seed=seed,
                                dataset=(scale, seed))
        console.rule("4/5 lakehouse and recommender (Dagster job `train`)")
        console.print(train_recommender())
        console.rule("5/5 summary")
        summary = Table("loaded", "rows")
        for table, count in marketplace_counts().items():
            summary.add_row(table, f"{count:,}")
        console.print(summary)
        console.print(f"simulation: {report.requests:,} requests ({report.requests_per_second:.0f}/s), "
                      f"{report.orders_placed} orders, {report.events_posted:,} events, "
                      f"{report.server_errors} server errors")
        if not serve:
            return
        _serve_until_interrupted(api, others, log_dir, seller_admin_emails(scale, seed)[0], DEMO_PASSWORD, console)


def _serve_until_interrupted(api: UserInterface, others: list[UserInterface], log_dir: Path, seller: str,
                             password: str, console: Console) -> None:
    with running([interface.service(log_dir) for interface in others]):
        table = Table("service", "open")
        for interface in [api, *others]:
            table.add_row(interface.title, interface.url(interface.open_path))
        table.add_row("Seller dashboard", api.url("/seller/dashboard"))
        table.add_row("Admin dashboard", api.url("/admin/dashboard"))
        console.print(table)
        console.print(f"sign in as a seller: {seller} / {password}   logs: {log_dir}   (Ctrl-C stops everything)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")
