"""Engines and sessions. Every application session carries an AccessContext that the database
enforces through row-level security (GUCs app.scope / app.tenant_id / app.user_id, set per
transaction with SET LOCAL semantics), so a query with no tenant filter still sees one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from transactional.config import get_settings
from transactional.embedded_pg import database_url

APP_ROLE = "marketlake_app"

Scope = Literal["tenant", "shopper", "platform"]


@dataclass(frozen=True)
class AccessContext:
    """Who is acting: a seller within one tenant, a shopper (anonymous when user_id is None),
    or the platform itself (admins, background jobs)."""

    scope: Scope
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if self.scope == "tenant" and self.tenant_id is None:
            raise ValueError("a tenant-scoped context needs a tenant_id")


PLATFORM = AccessContext("platform")
ANONYMOUS_SHOPPER = AccessContext("shopper")


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {url.split(':', 1)[0]}://...")


@lru_cache
def owner_engine() -> Engine:
    """Connects as the configured (owning) user: migrations, change-feed readers, admin tools."""
    return create_engine(sqlalchemy_url(database_url(get_settings())), pool_pre_ping=True, pool_size=5)


@lru_cache
def app_engine() -> Engine:
    """Connects as the non-owner application role, so row-level security applies to every query."""
    engine = create_engine(
        sqlalchemy_url(database_url(get_settings())),
        pool_pre_ping=True,
        pool_size=20,
        max_overflow=60,
    )

    @event.listens_for(engine, "connect")
    def _assume_app_role(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {APP_ROLE}")
        dbapi_connection.commit()

    return engine


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(app_engine(), expire_on_commit=False)


_SET_CONTEXT = text(
    "SELECT set_config('app.scope', :scope, true), set_config('app.tenant_id', :tenant, true),"
    " set_config('app.user_id', :user, true)"
)


def _context_params(access: AccessContext) -> dict[str, str]:
    return {
        "scope": access.scope,
        "tenant": str(access.tenant_id) if access.tenant_id else "",
        "user": str(access.user_id) if access.user_id else "",
    }


def apply_access(session: Session, access: AccessContext) -> None:
    """Set the row-level-security context for the rest of the current transaction."""
    session.info["access"] = access
    session.execute(_SET_CONTEXT, _context_params(access))


@event.listens_for(Session, "after_begin")
def _set_context_on_begin(session: Session, _transaction, connection) -> None:
    access = session.info.get("access")
    if access is not None:
        connection.execute(_SET_CONTEXT, _context_params(access))


def new_session(access: AccessContext) -> Session:
    session = _session_factory()()
    session.info["access"] = access
    return session


@contextmanager
def session_scope(access: AccessContext) -> Iterator[Session]:
    """One transaction under `access`: committed on success, rolled back on any error."""
    session = new_session(access)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


@contextmanager
def acting_as(session: Session, access: AccessContext) -> Iterator[None]:
    """Switch the RLS context inside the current transaction, restoring it afterwards.

    Used where trusted server code acts on behalf of a shopper across tenants (the checkout
    saga reserves stock of several sellers) after checking ownership itself."""
    previous = session.info.get("access")
    apply_access(session, access)
    # Restored only on success: after an error the transaction is failed and rolls back anyway,
    # and a restore statement there would hide the original error.
    yield
    if previous is not None:
        apply_access(session, previous)
