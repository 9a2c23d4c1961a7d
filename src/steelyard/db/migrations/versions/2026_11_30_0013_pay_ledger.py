"""pay ledger

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 16:36:01

The pay ledger (``steelyard.pay``): entries (unique per type, source and worker, so work is
never paid twice), their two postings (organization liability and worker balance, summing to
zero), closed pay periods, and organizations' own currency and hourly floor. New tables only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import steelyard.db.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pay_org_settings",
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column(
            "min_hourly_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_pay_org_settings_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_pay_org_settings")),
    )
    op.create_table(
        "pay_periods",
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("starts_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "floor_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_pay_periods_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "period", name=op.f("pk_pay_periods")),
    )
    op.create_table(
        "pay_entries",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column(
            "amount_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("active_seconds", sa.Float(), nullable=False),
        sa.Column("occurred_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_pay_entries_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_pay_entries_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pay_entries_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pay_entries")),
    )
    with op.batch_alter_table("pay_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pay_entries_org_period_user", ["org_id", "period", "user_id"], unique=False
        )
        batch_op.create_index(
            "ix_pay_entries_project", ["project_id", "type", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_pay_entries_user", ["user_id", "created_at"], unique=False)
        batch_op.create_index(
            "ux_pay_entries_source",
            ["org_id", "type", "source_kind", "source_id", "user_id"],
            unique=True,
        )

    op.create_table(
        "pay_postings",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("entry_id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("account", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column(
            "amount_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["pay_entries.id"],
            name=op.f("fk_pay_postings_entry_id_pay_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_pay_postings_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_pay_postings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pay_postings")),
    )
    with op.batch_alter_table("pay_postings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pay_postings_account", ["org_id", "account", "user_id"], unique=False
        )
        batch_op.create_index("ix_pay_postings_entry", ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pay_postings", schema=None) as batch_op:
        batch_op.drop_index("ix_pay_postings_entry")
        batch_op.drop_index("ix_pay_postings_account")

    op.drop_table("pay_postings")
    with op.batch_alter_table("pay_entries", schema=None) as batch_op:
        batch_op.drop_index("ux_pay_entries_source")
        batch_op.drop_index("ix_pay_entries_user")
        batch_op.drop_index("ix_pay_entries_project")
        batch_op.drop_index("ix_pay_entries_org_period_user")

    op.drop_table("pay_entries")
    op.drop_table("pay_periods")
    op.drop_table("pay_org_settings")
