"""Shared fixtures: a real embedded PostgreSQL for the test session, migrated with Alembic,
emptied between tests; API clients in-process and over real HTTP."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TEST_HOME = Path(tempfile.gettempdir()) / f"marketlake-test-{os.getuid()}"
os.environ.setdefault("MARKETLAKE_HOME", str(TEST_HOME))
os.environ.setdefault("MARKETLAKE_PG_PORT", "54339")
os.environ.setdefault("MARKETLAKE_LOG_LEVEL", "WARNING")
os.environ.setdefault("MARKETLAKE_ARGON2_TIME_COST", "1")
os.environ.setdefault("MARKETLAKE_ARGON2_MEMORY_KIB", "8192")
# Tests empty the database they use: never a user's DATABASE_URL, only an explicit test server.
if os.environ.get("MARKETLAKE_TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["MARKETLAKE_TEST_DATABASE_URL"]
else:
    os.environ.pop("DATABASE_URL", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def migrated_database() -> str:
    """A database built from the migrations at the start of every test session."""
    from transactional.config import get_settings
    from transactional.embedded_pg import EmbeddedPostgres, database_url
    from transactional.migrate import upgrade

    settings = get_settings()
    if not settings.database_url:
        EmbeddedPostgres.from_settings(settings).recreate_database()
    url = database_url(settings)
    upgrade()
    return url


@pytest.fixture
def db(migrated_database: str) -> Iterator[str]:
    """An empty, migrated database for one test."""
    from sqlalchemy import text

    from transactional.db import owner_engine
    from transactional.models import Base
    from transactional.ratelimit import tenant_buckets

    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with owner_engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    tenant_buckets.reset()
    yield migrated_database


@pytest.fixture
def client(db: str):
    from fastapi.testclient import TestClient

    from transactional.api.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(app) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a loopback port (its lifespan runs); the base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(db: str) -> Iterator[str]:
    """The API served by uvicorn on a loopback port, for tests that need real concurrency."""
    from transactional.api.app import create_app

    with served(create_app()) as url:
        yield url


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (a fresh clone has none)")
    return SHARED_DATA
