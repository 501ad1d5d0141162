"""Row-level security, the application role, and database-level change capture.

Isolation is enforced by PostgreSQL, not by query filters: the application connects as
`marketlake_app` (not an owner, no BYPASSRLS) and every tenant- or buyer-owned table has FORCE
ROW LEVEL SECURITY with policies keyed on per-transaction settings (app.scope, app.tenant_id,
app.user_id).

Every change to a captured table writes an `outbox` row (and an `audit_log` row for seller and
admin actions) from an AFTER trigger in the same transaction, so no change can commit without
its event.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
CURRENT_USER = "NULLIF(current_setting('app.user_id', true), '')::uuid"
SCOPE = "current_setting('app.scope', true)"

# table -> extra policies beyond "platform sees everything"
TENANT_OWNED = {
    "products": {"shopper_read"},
    "skus": {"shopper_read"},
    "warehouses": {"shopper_read"},
    "inventory_levels": {"shopper_read"},
    "reviews": {"shopper_read", "buyer_own"},
    "product_versions": set(),
    "stock_reservations": set(),
    "stock_adjustments": set(),
    "staff_invitations": set(),
    "sub_orders": {"buyer_own"},
    "order_items": {"buyer_own"},
    "order_status_changes": {"buyer_own"},
    "refunds": {"buyer_own"},
}
BUYER_OWNED = ["carts", "cart_items", "orders", "payments"]

# table -> (aggregate type, columns never copied into the outbox or audit log)
CAPTURED = {
    "tenants": ("tenant", ""),
    "users": ("user", "password_hash"),
    "staff_invitations": ("staff_invitation", "token_hash"),
    "categories": ("category", ""),
    "products": ("product", ""),
    "skus": ("sku", ""),
    "warehouses": ("warehouse", ""),
    "inventory_levels": ("inventory", ""),
    "stock_reservations": ("stock_reservation", ""),
    "orders": ("order", ""),
    "sub_orders": ("sub_order", ""),
    "order_items": ("order_item", ""),
    "payments": ("payment", ""),
    "refunds": ("refund", ""),
    "reviews": ("review", ""),
}

CAPTURE_FUNCTION = f"""
CREATE FUNCTION marketlake_capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    new_row jsonb;
    old_row jsonb;
    row_data jsonb;
    action text;
    tenant uuid;
    diff jsonb;
    hidden text[] := string_to_array(NULLIF(TG_ARGV[1], ''), ',');
BEGIN
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD) - coalesce(hidden, '{{}}'); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW) - coalesce(hidden, '{{}}'); END IF;
    IF TG_OP = 'UPDATE' AND new_row = old_row THEN
        RETURN NULL;
    END IF;
    action := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    row_data := coalesce(new_row, old_row);
    tenant := CASE WHEN TG_TABLE_NAME = 'tenants' THEN (row_data->>'id')::uuid
                   ELSE (row_data->>'tenant_id')::uuid END;

    INSERT INTO outbox (event_type, schema_version, tenant_id, aggregate_type, aggregate_id, payload,
                        actor_user_id, occurred_at)
    VALUES (TG_ARGV[0] || '.' || action, 1, tenant, TG_ARGV[0], row_data->>'id', row_data,
            {CURRENT_USER}, clock_timestamp());

    IF {SCOPE} IN ('tenant', 'platform') AND {CURRENT_USER} IS NOT NULL THEN
        IF TG_OP = 'UPDATE' THEN
            SELECT jsonb_object_agg(n.key, jsonb_build_object('old', o.value, 'new', n.value)) INTO diff
            FROM jsonb_each(new_row) n LEFT JOIN jsonb_each(old_row) o USING (key)
            WHERE n.value IS DISTINCT FROM o.value AND n.key <> 'updated_at';
        ELSE
            diff := row_data;
        END IF;
        INSERT INTO audit_log (tenant_id, actor_user_id, actor_scope, action, entity_type, entity_id,
                               changes, occurred_at)
        VALUES (tenant, {CURRENT_USER}, {SCOPE}, action, TG_ARGV[0], row_data->>'id',
                coalesce(diff, '{{}}'), clock_timestamp());
    END IF;
    RETURN NULL;
END;
$$;
"""


def _policy(table: str, name: str, using: str, command: str = "ALL") -> str:
    check = "" if command == "SELECT" else f" WITH CHECK ({using})"
    return f"CREATE POLICY {name} ON {table} FOR {command} TO PUBLIC USING ({using}){check}"


def upgrade() -> None:
    op.execute(
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'marketlake_app') THEN
                CREATE ROLE marketlake_app NOLOGIN NOBYPASSRLS;
            END IF;
        END $$;
        """
    )
    # The configured login user assumes the app role with SET ROLE (see transactional.db).
    op.execute("GRANT marketlake_app TO CURRENT_USER")
    op.execute("GRANT USAGE ON SCHEMA public TO marketlake_app")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO marketlake_app")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO marketlake_app")
    # The outbox is written by the capture trigger and read by the change feed (as the owner);
    # the app may add domain events (e.g. low stock) but never rewrite history.
    op.execute("REVOKE UPDATE, DELETE ON outbox FROM marketlake_app")
    op.execute("REVOKE UPDATE, DELETE ON audit_log FROM marketlake_app")

    platform = f"{SCOPE} = 'platform'"
    for table, extras in TENANT_OWNED.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(_policy(table, "platform_all", platform))
        op.execute(_policy(table, "tenant_isolation", f"{SCOPE} = 'tenant' AND tenant_id = {CURRENT_TENANT}"))
        if "shopper_read" in extras:
            op.execute(_policy(table, "shopper_read", f"{SCOPE} = 'shopper'", "SELECT"))
        if "buyer_own" in extras:
            op.execute(_policy(table, "buyer_own", f"{SCOPE} = 'shopper' AND buyer_id = {CURRENT_USER}"))
    for table in BUYER_OWNED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(_policy(table, "platform_all", platform))
        op.execute(_policy(table, "buyer_own", f"{SCOPE} = 'shopper' AND buyer_id = {CURRENT_USER}"))

    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute(_policy("tenants", "platform_all", platform))
    op.execute(_policy("tenants", "tenant_self", f"{SCOPE} = 'tenant' AND id = {CURRENT_TENANT}"))
    op.execute(_policy("tenants", "shopper_read", f"{SCOPE} = 'shopper'", "SELECT"))

    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users FORCE ROW LEVEL SECURITY")
    op.execute(_policy("users", "platform_all", platform))
    op.execute(_policy("users", "self", f"id = {CURRENT_USER}"))
    op.execute(_policy("users", "tenant_members", f"{SCOPE} = 'tenant' AND tenant_id = {CURRENT_TENANT}"))

    # Not FORCEd: the capture trigger (SECURITY DEFINER, owner) writes it for every scope.
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute(_policy("audit_log", "platform_all", platform))
    op.execute(_policy("audit_log", "tenant_isolation", f"{SCOPE} = 'tenant' AND tenant_id = {CURRENT_TENANT}", "SELECT"))

    op.execute(CAPTURE_FUNCTION)
    for table, (aggregate, hidden) in CAPTURED.items():
        op.execute(
            f"CREATE TRIGGER capture_change AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION marketlake_capture_change('{aggregate}', '{hidden}')"
        )


def downgrade() -> None:
    for table in CAPTURED:
        op.execute(f"DROP TRIGGER IF EXISTS capture_change ON {table}")
    op.execute("DROP FUNCTION IF EXISTS marketlake_capture_change()")
    for table in [*TENANT_OWNED, *BUYER_OWNED, "tenants", "users", "audit_log"]:
        op.execute(f"DROP POLICY IF EXISTS platform_all ON {table}")
        for name in ("tenant_isolation", "shopper_read", "buyer_own", "tenant_self", "self", "tenant_members"):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM marketlake_app")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM marketlake_app")
    op.execute("REVOKE USAGE ON SCHEMA public FROM marketlake_app")
