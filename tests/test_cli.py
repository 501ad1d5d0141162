"""Every CLI command documents itself, and the database commands work against embedded PostgreSQL."""

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from orchestration.cli import app

runner = CliRunner()


def _command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


@pytest.mark.parametrize("path", _command_paths(get_command(app)), ids=lambda p: " ".join(p) or "marketlake")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_db_status_url_and_migrate(db):
    assert runner.invoke(app, ["db", "status"]).exit_code == 0
    url = runner.invoke(app, ["db", "url"]).output.strip()
    assert url.startswith("postgresql://") and url.endswith("/marketlake")
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0


def test_create_admin_rejects_a_short_password_and_duplicates(db):
    short = runner.invoke(app, ["create-admin", "--email", "ops@example.com", "--password", "short"])
    assert short.exit_code == 2 and "8 characters" in short.output
    assert runner.invoke(app, ["create-admin", "--email", "ops@example.com", "--password", "long-enough"]).exit_code == 0
    duplicate = runner.invoke(app, ["create-admin", "--email", "ops@example.com", "--password", "long-enough"])
    assert duplicate.exit_code == 1


def test_a_taken_embedded_postgres_port_is_named_with_the_setting_to_change(migrated_database):
    import shutil

    from transactional.config import get_settings
    from transactional.embedded_pg import EmbeddedPostgres

    settings = get_settings()
    if settings.database_url:
        pytest.skip("the tests run against an external PostgreSQL: no embedded port to take")
    second_home = settings.home_dir / "second-home-pgdata"
    try:
        with pytest.raises(RuntimeError, match="MARKETLAKE_PG_PORT"):
            EmbeddedPostgres(second_home, settings.pg_port).start()  # the test server holds the port
    finally:
        shutil.rmtree(second_home, ignore_errors=True)
