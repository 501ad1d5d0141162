"""The catalog service contract other components build on: ensure_categories and import_products."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from transactional.db import PLATFORM, AccessContext, session_scope
from transactional.errors import Forbidden, Unprocessable
from transactional.models import Category, Product, ProductVersion, Sku, Tenant, TenantStatus
from transactional.services.catalog import ProductRow, ensure_categories, import_products


def _tenant(slug: str) -> uuid.UUID:
    with session_scope(PLATFORM) as session:
        tenant = Tenant(
            slug=slug, legal_name=slug, store_name=slug, status=TenantStatus.active, branding={}, shipping={}
        )
        session.add(tenant)
        session.flush()
        return tenant.id


def _row(ref: str, code: str, price: str = "10.00", **overrides) -> ProductRow:
    values = {
        "product_ref": ref,
        "sku_code": code,
        "title": f"Product {ref}",
        "price": price,
        "currency": "EUR",
        "status": "active",
        **overrides,
    }
    return ProductRow.model_validate(values)


def _import(tenant_id, rows, actor=None):
    with session_scope(PLATFORM) as session:
        return import_products(session, tenant_id=tenant_id, actor_user_id=actor, rows=rows)


def test_ensure_categories_creates_paths_with_ancestors_once(db):
    with session_scope(PLATFORM) as session:
        first = ensure_categories(session, ["home/kitchen", "home/garden", "toys"])
    with session_scope(AccessContext("shopper")) as session:
        again = ensure_categories(session, ["home/kitchen"])
        parents = dict(session.execute(select(Category.slug, Category.parent_id)).all())
        names = dict(session.execute(select(Category.slug, Category.name)).all())
    assert set(first) == {"home", "home/kitchen", "home/garden", "toys"}
    assert again == {"home": first["home"], "home/kitchen": first["home/kitchen"]}
    assert parents["home/kitchen"] == first["home"] and parents["home"] is None
    assert names["home/kitchen"] == "Kitchen"


def test_ensure_categories_rejects_malformed_paths(db):
    with session_scope(PLATFORM) as session, pytest.raises(Unprocessable) as raised:
        ensure_categories(session, ["Home/Kitchen", "a//b"])
    assert [error["field"] for error in raised.value.errors] == ["category", "category"]


def test_import_creates_products_skus_versions_and_min_price(db):
    tenant_id = _tenant("acme")
    with session_scope(PLATFORM) as session:
        ensure_categories(session, ["home/kitchen"])
    rows = [
        _row("kettle", "K-1", "30.00", category="home/kitchen", sku_attributes={"color": "red"}),
        _row("kettle", "K-2", "25.50", category="home/kitchen"),
        _row("mug", "M-1", "4"),
    ]
    result = _import(tenant_id, rows)
    assert (result.products_created, result.skus_created, result.products_unchanged) == (2, 3, 0)
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        kettle = session.scalars(select(Product).where(Product.external_ref == "kettle")).one()
        assert kettle.min_price == Decimal("25.50") and kettle.version == 1
        assert session.scalar(select(func.count()).select_from(Sku).where(Sku.product_id == kettle.id)) == 2
        snapshot = session.scalars(
            select(ProductVersion.snapshot).where(ProductVersion.product_id == kettle.id)
        ).one()
        assert [sku["sku_code"] for sku in snapshot["skus"]] == ["K-1", "K-2"]
        assert snapshot["skus"][0]["price"] == "30.00"


def test_reimporting_the_same_rows_changes_nothing(db):
    tenant_id = _tenant("acme")
    rows = [_row("kettle", "K-1", "30"), _row("kettle", "K-2", "25.5"), _row("mug", "M-1")]
    _import(tenant_id, rows)
    again = _import(tenant_id, rows)
    assert (again.products_unchanged, again.skus_unchanged, again.products_updated, again.skus_updated) == (
        2,
        3,
        0,
        0,
    )
    changed = _import(tenant_id, [_row("kettle", "K-2", "19.99")])
    assert (changed.products_updated, changed.skus_updated) == (1, 1)
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        kettle = session.scalars(select(Product).where(Product.external_ref == "kettle")).one()
        assert (kettle.version, kettle.min_price) == (2, Decimal("19.99"))
        assert session.scalar(select(func.count()).select_from(ProductVersion)) == 3


def test_import_reports_every_bad_row_and_writes_nothing(db):
    tenant_id = _tenant("acme")
    _import(tenant_id, [_row("kettle", "K-1")])
    rows = [
        _row("mug", "M-1"),
        _row("mug", "M-1"),  # repeated SKU code
        _row("mug", "M-2", title="Another title"),  # disagrees with row 1
        _row("pan", "K-1"),  # K-1 belongs to kettle
        _row("pot", "P-1", category="no/such"),  # unknown category
        _row("bowl", "B-1", currency="USD"),
        _row("bowl", "B-2"),  # mixed currencies
        _row("cup", "C-1", sku_active=False),  # active without an active SKU
    ]
    with pytest.raises(Unprocessable) as raised:
        _import(tenant_id, rows)
    assert [(e["row"], e["field"]) for e in raised.value.errors] == [
        (2, "sku_code"),
        (3, "title"),
        (4, "sku_code"),
        (5, "category"),
        (6, "currency"),
        (8, "status"),
    ]
    assert raised.value.extra["error_count"] == 6
    with session_scope(PLATFORM) as session:
        assert session.scalar(select(func.count()).select_from(Product)) == 1


def test_import_needs_the_tenants_own_scope_or_the_platform(db):
    tenant_id, other = _tenant("acme"), _tenant("other")
    with pytest.raises(Forbidden), session_scope(AccessContext("tenant", tenant_id=other)) as session:
        import_products(session, tenant_id=tenant_id, actor_user_id=None, rows=[_row("a", "A-1")])
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        assert (
            import_products(session, tenant_id=tenant_id, actor_user_id=None, rows=[_row("a", "A-1")]).rows
            == 1
        )


def test_import_records_the_actor_in_the_audit_log(db):
    from transactional.db import owner_engine

    tenant_id = _tenant("acme")
    actor = uuid.uuid4()
    _import(tenant_id, [_row("kettle", "K-1")], actor=actor)
    with owner_engine().connect() as connection:
        entries = connection.execute(
            text(
                "SELECT entity_type, actor_user_id, actor_scope FROM audit_log"
                " WHERE tenant_id = :t ORDER BY id"
            ),
            {"t": tenant_id},
        ).all()
    assert [(e.entity_type, e.actor_user_id, e.actor_scope) for e in entries] == [
        ("product", actor, "tenant"),
        ("sku", actor, "tenant"),
    ]


def test_importing_a_deleted_products_reference_restores_it_as_a_new_version(db):
    from transactional.services.catalog import delete_product

    tenant_id = _tenant("acme")
    _import(tenant_id, [_row("kettle", "K-1")])
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        product_id = session.scalars(select(Product.id)).one()
        delete_product(session, tenant_id=tenant_id, actor_user_id=None, product_id=product_id)
    restored = _import(tenant_id, [_row("kettle", "K-1")])
    assert (restored.products_updated, restored.skus_unchanged) == (1, 1)
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        product = session.get(Product, product_id)
        assert (product.deleted_at, product.version) == (None, 3)
        reasons = session.scalars(select(ProductVersion.change_reason).order_by(ProductVersion.version)).all()
    assert reasons == ["import", "deleted", "import"]


@pytest.mark.parametrize("table", ["products", "skus"])
def test_bulk_lookups_probe_the_unique_key_per_value_whatever_the_statistics_say(db, table):
    """Right after a bulk load the planner may believe the tables are nearly empty; the import's
    lookups must stay one unique-key probe per value, never a filter over the whole tenant."""
    from transactional.services.catalog import PRODUCTS, SKUS, _for_each

    tenant_id = _tenant("acme")
    refs = [f"p{i}" for i in range(2000)]
    _import(tenant_id, [_row(ref, ref) for ref in refs])
    rows, key = (PRODUCTS, PRODUCTS.c.external_ref) if table == "products" else (SKUS, SKUS.c.sku_code)
    lookup = _for_each(refs, lambda value: select(rows).where(rows.c.tenant_id == tenant_id, key == value))
    with session_scope(AccessContext("tenant", tenant_id=tenant_id)) as session:
        compiled = lookup.compile(dialect=session.get_bind().dialect)
        plan = "\n".join(
            session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
        )
    assert "Nested Loop" in plan and f"Index Scan using uq_{table}_tenant_id" in plan, plan
    assert f"Seq Scan on {table}" not in plan, plan
