"""Catalog: platform-owned categories under RLS, longer slug paths, storefront browse indexes.

Products and SKUs lose their tenant_id-only indexes: the (tenant_id, external_ref) and
(tenant_id, sku_code) unique indexes already lead with tenant_id, and with a second candidate
the planner, when statistics are stale (right after a bulk load), may probe the tenant_id index
and filter the whole tenant for every looked-up code. One index less also makes imports cheaper.

Categories are readable by every scope (the public tree, storefront filters) and writable only
in platform scope, so seller or shopper code cannot change the tree even by mistake. Slugs are
materialised paths ("home/kitchen/knives"), hence 255 characters. The storefront lists only
active, live products in one of three keyset orders; each gets a partial index matching its
WHERE clause and ORDER BY, so a page is an index range scan however large the catalog grows.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BROWSABLE = "status = 'active' AND deleted_at IS NULL AND min_price IS NOT NULL"
STOREFRONT_INDEXES = {
    "ix_products_storefront_price": ["min_price", "id"],
    "ix_products_storefront_newest": ["created_at", "id"],
    "ix_products_storefront_rating": [sa.text("coalesce(rating_avg, 0)"), "id"],
}


REDUNDANT_TENANT_INDEXES = {"ix_products_tenant_id": "products", "ix_skus_tenant_id": "skus"}


def upgrade() -> None:
    for name, table in REDUNDANT_TENANT_INDEXES.items():
        op.drop_index(name, table_name=table)
    op.alter_column("categories", "slug", type_=sa.String(255), existing_nullable=False)
    op.execute("ALTER TABLE categories ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE categories FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY read_all ON categories FOR SELECT TO PUBLIC USING (true)")
    op.execute(
        "CREATE POLICY platform_all ON categories FOR ALL TO PUBLIC"
        " USING (current_setting('app.scope', true) = 'platform')"
        " WITH CHECK (current_setting('app.scope', true) = 'platform')"
    )
    for name, columns in STOREFRONT_INDEXES.items():
        op.create_index(name, "products", columns, postgresql_where=sa.text(BROWSABLE))


def downgrade() -> None:
    for name in STOREFRONT_INDEXES:
        op.drop_index(name, table_name="products")
    op.execute("DROP POLICY IF EXISTS platform_all ON categories")
    op.execute("DROP POLICY IF EXISTS read_all ON categories")
    op.execute("ALTER TABLE categories NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE categories DISABLE ROW LEVEL SECURITY")
    op.alter_column("categories", "slug", type_=sa.String(120), existing_nullable=False)
    for name, table in REDUNDANT_TENANT_INDEXES.items():
        op.create_index(name, table, ["tenant_id"])
