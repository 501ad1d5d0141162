"""External interaction data sets (MovieLens and other public user-item data) for training.

Platform data: row-level security lets only the platform scope read or write it.

Revision ID: 0006
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("external_datasets", "external_interactions")


def upgrade() -> None:
    op.create_table(
        "external_datasets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "external_interactions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("dataset", sa.String(64), sa.ForeignKey("external_datasets.name", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("user_ref", sa.String(128), nullable=False),
        sa.Column("item_ref", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
    )
    op.create_index("ix_external_interactions_dataset_user", "external_interactions",
                    ["dataset", "user_ref", "position"])
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO marketlake_app")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY platform_all ON {table} FOR ALL TO PUBLIC"
                   " USING (current_setting('app.scope', true) = 'platform')"
                   " WITH CHECK (current_setting('app.scope', true) = 'platform')")
    op.execute("GRANT USAGE, SELECT ON SEQUENCE external_interactions_id_seq TO marketlake_app")


def downgrade() -> None:
    op.drop_table("external_interactions")
    op.drop_table("external_datasets")
