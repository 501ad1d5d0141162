"""Analytics in PostgreSQL: the schemas the warehouse load and dbt write, the isolation functions
dbt applies to every mart, and the generated seller dashboards.

- `analytics`: lakehouse tables loaded from Delta (dbt's sources) and the dashboards. The
  application role reads none of the loaded tables: they span every tenant.
- `seller_analytics`: seller marts (dbt tables). A dbt post-hook calls
  `analytics.isolate_by_tenant(table)`, so a seller's session sees only its tenant's rows, as on
  the transactional tables (same settings: app.scope, app.tenant_id).
- `platform_analytics`: marketplace-wide marts; `analytics.restrict_to_platform(table)` lets only
  the platform scope read them.

dbt rebuilds a table on every run (a new relation each time), which is why the policies are
applied by functions the post-hook calls rather than once here. The functions run as the caller
(the pipeline's owner role), and give that role a policy of its own so FORCEd row-level security
does not hide the marts from dbt's tests when the owner is not a superuser.

Revision ID: 0009
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE = "current_setting('app.scope', true)"
CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
SCHEMAS = ("analytics", "seller_analytics", "platform_analytics")
# The conditions as literals inside format() strings of the functions below.
_SCOPE_LITERAL = SCOPE.replace("'", "''")
_TENANT_LITERAL = CURRENT_TENANT.replace("'", "''")

_SECURE = f"""
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS pipeline_owner ON %s', target);
    EXECUTE format('CREATE POLICY pipeline_owner ON %s FOR ALL TO %I USING (true) WITH CHECK (true)',
                   target, current_user);
    EXECUTE format('DROP POLICY IF EXISTS platform_all ON %s', target);
    EXECUTE format('CREATE POLICY platform_all ON %s FOR SELECT TO PUBLIC USING ({_SCOPE_LITERAL} = ''platform'')', target);
    EXECUTE format('GRANT SELECT ON %s TO marketlake_app', target);
"""

ISOLATE_BY_TENANT = f"""
CREATE FUNCTION analytics.isolate_by_tenant(target regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    {_SECURE}
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', target);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s FOR SELECT TO PUBLIC USING ({_SCOPE_LITERAL}'
                   ' = ''tenant'' AND tenant_id = {_TENANT_LITERAL})', target);
END;
$$;
"""

RESTRICT_TO_PLATFORM = f"""
CREATE FUNCTION analytics.restrict_to_platform(target regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    {_SECURE}
END;
$$;
"""


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        op.execute(f"GRANT USAGE ON SCHEMA {schema} TO marketlake_app")
    op.execute(ISOLATE_BY_TENANT)
    op.execute(RESTRICT_TO_PLATFORM)
    op.execute(
        """
        CREATE TABLE analytics.seller_dashboards (
            tenant_id uuid PRIMARY KEY,
            generated_at timestamptz NOT NULL,
            data_through date,
            document jsonb NOT NULL
        )
        """
    )
    op.execute("SELECT analytics.isolate_by_tenant('analytics.seller_dashboards')")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS analytics.seller_dashboards")
    op.execute("DROP FUNCTION IF EXISTS analytics.isolate_by_tenant(regclass)")
    op.execute("DROP FUNCTION IF EXISTS analytics.restrict_to_platform(regclass)")
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
