"""accounts security: invitations, organization-bound sessions, revocation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import steelyard.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email_hash", name=op.f("pk_sign_in_failures")),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_failures_last_failed_at", ["last_failed_at"], unique=False
        )

    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("declined_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_invitations_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_invitations_org_id_email")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("ix_invitations_email", ["email"], unique=False)

    # Sessions from before this revision were bound to the user's earliest membership, which
    # could be an organization the person never chose (cross-organization capture): sign
    # everyone out once, so every session from now on is bound to a chosen organization. That
    # also lets ``id`` be added as NOT NULL without inventing values.
    op.execute("DELETE FROM login_sessions")
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id", sa.String(length=24), nullable=False))
        batch_op.add_column(
            sa.Column("revoked_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_login_sessions_id"), ["id"])


def downgrade() -> None:
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_login_sessions_id"), type_="unique")
        batch_op.drop_column("user_agent")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("id")

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_email")
    op.drop_table("invitations")

    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_last_failed_at")
    op.drop_table("sign_in_failures")
