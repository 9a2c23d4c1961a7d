"""gold serving: projects.quality_settings and gold_counts

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 16:00:00

``projects.quality_settings`` copies a project's gold rate and qualification out of its params
at each change, so that ``next`` finds the organization's projects that serve gold or qualify
with one probe of a partial index (nothing for an organization without them), never decoding
params. ``gold_counts`` counts, per worker and project with a gold rate, the live and the
evaluation items served: the worker's next item there is gold by those counts alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch rebuild of projects on SQLite).
    op.add_column(
        "projects",
        sa.Column(
            "quality_settings",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_projects_quality",
        "projects",
        ["org_id", "is_test"],
        unique=False,
        sqlite_where=sa.text("quality_settings IS NOT NULL"),
        postgresql_where=sa.text("quality_settings IS NOT NULL"),
    )
    op.create_table(
        "gold_counts",
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("live_served", sa.Integer(), server_default="0", nullable=False),
        sa.Column("gold_served", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_gold_counts_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_gold_counts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_gold_counts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_gold_counts")),
    )


def downgrade() -> None:
    op.drop_table("gold_counts")
    op.drop_index("ix_projects_quality", table_name="projects")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("quality_settings")
