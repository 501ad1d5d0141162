"""Tenant isolation is enforced by PostgreSQL: queries here carry no tenant filter at all."""

import uuid

import pytest
from sqlalchemy import text

from transactional.db import PLATFORM, AccessContext, session_scope
from transactional.models import Product, Tenant


def _tenant(session, slug: str) -> uuid.UUID:
    tenant = Tenant(slug=slug, legal_name=slug, store_name=slug, branding={}, shipping={})
    session.add(tenant)
    session.flush()
    session.add(Product(tenant_id=tenant.id, title=f"{slug} product", attributes={}, images=[]))
    return tenant.id


def test_unfiltered_queries_see_only_the_current_tenant(db):
    with session_scope(PLATFORM) as session:
        first, second = _tenant(session, "first"), _tenant(session, "second")

    with session_scope(AccessContext("tenant", tenant_id=first)) as session:
        titles = session.execute(text("SELECT title FROM products")).scalars().all()
        assert titles == ["first product"]
        assert session.execute(text("SELECT count(*) FROM tenants")).scalar() == 1
        updated = session.execute(text("UPDATE products SET title = 'hijacked' WHERE tenant_id = :t"), {"t": second})
        deleted = session.execute(text("DELETE FROM products WHERE tenant_id = :t"), {"t": second})
        assert updated.rowcount == 0 and deleted.rowcount == 0

    with session_scope(PLATFORM) as session:
        assert session.execute(text("SELECT title FROM products WHERE tenant_id = :t"), {"t": second}).scalar() == "second product"


def test_a_tenant_cannot_write_rows_for_another_tenant(db):
    from sqlalchemy.exc import ProgrammingError

    with session_scope(PLATFORM) as session:
        first, second = _tenant(session, "first"), _tenant(session, "second")
    with pytest.raises(ProgrammingError, match="row-level security"):
        with session_scope(AccessContext("tenant", tenant_id=first)) as session:
            session.add(Product(tenant_id=second, title="planted", attributes={}, images=[]))
            session.flush()


def test_no_context_sees_nothing_and_app_role_is_not_owner(db):
    from transactional.db import app_engine

    with session_scope(PLATFORM) as session:
        _tenant(session, "first")
    with app_engine().connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM products")).scalar() == 0
        role = connection.execute(text("SELECT current_user")).scalar()
        bypass = connection.execute(text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    assert role == "marketlake_app" and bypass is False


def test_every_change_writes_an_outbox_row_in_the_same_transaction(db):
    from transactional.db import owner_engine

    with pytest.raises(RuntimeError):
        with session_scope(PLATFORM) as session:
            _tenant(session, "rolled-back")
            raise RuntimeError("abort")
    with session_scope(PLATFORM) as session:
        tenant_id = _tenant(session, "kept")
    with owner_engine().connect() as connection:
        rows = connection.execute(text("SELECT event_type, tenant_id FROM outbox ORDER BY id")).all()
    assert [r.event_type for r in rows] == ["tenant.created", "product.created"]
    assert all(r.tenant_id == tenant_id for r in rows)
