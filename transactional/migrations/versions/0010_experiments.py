"""A/B experiments: operators split a serving surface's traffic between variants.

Platform data: row-level security lets only the platform scope read or write it. Changes are
captured (outbox and audit log) like other business state, so who started or stopped an
experiment, and when, is on record. At most one experiment runs per surface (partial unique
index), which is what makes an assignment unambiguous.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORM = "current_setting('app.scope', true) = 'platform'"


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("surface", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("variants", JSONB, nullable=False),
        sa.Column("created_by", UUID(as_uuid=True),
                  sa.ForeignKey("users.id", ondelete="SET NULL", name="fk_experiments_created_by_users")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("key", name="uq_experiments_key"),
        sa.CheckConstraint("surface IN ('recommendations', 'search')", name="ck_experiments_surface"),
        sa.CheckConstraint("status IN ('draft', 'running', 'stopped')", name="ck_experiments_status"),
        sa.CheckConstraint("jsonb_typeof(variants) = 'array' AND jsonb_array_length(variants) >= 2",
                           name="ck_experiments_variants"),
    )
    op.create_index("uq_experiments_running_surface", "experiments", ["surface"], unique=True,
                    postgresql_where=sa.text("status = 'running'"))
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON experiments TO marketlake_app")
    op.execute("ALTER TABLE experiments ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE experiments FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY platform_all ON experiments FOR ALL TO PUBLIC"
               f" USING ({PLATFORM}) WITH CHECK ({PLATFORM})")
    op.execute("CREATE TRIGGER capture_change AFTER INSERT OR UPDATE OR DELETE ON experiments "
               "FOR EACH ROW EXECUTE FUNCTION marketlake_capture_change('experiment', '')")


def downgrade() -> None:
    op.drop_table("experiments")
