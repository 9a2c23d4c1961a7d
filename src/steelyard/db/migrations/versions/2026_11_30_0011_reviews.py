"""reviews

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:45:14

A task whose labels are aggregated may wait for a reviewer (``workflow.review``): ``reviews``
holds each round (the candidate, the reviewer's lease, the decision, its reason or fixed
response, the active seconds). A task records its project's review setting at create
(``review_mode``, ``review_value``), so a submit reads nothing more to know whether it applies;
``rework`` holds the comment shown to the workers who label a task sent back (filled in for
the tasks an audit had sent back before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import steelyard.db.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("task_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column(
            "candidate",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewer_id", sa.String(length=24), nullable=True),
        sa.Column("started_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("active_seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_reviews_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_reviews_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
            name=op.f("fk_reviews_reviewer_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_seq"], ["tasks.seq"], name=op.f("fk_reviews_task_seq_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reviews_active_expiry",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(
            "ix_reviews_org_status", ["org_id", "status", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_reviews_project_status", ["project_id", "status", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_reviews_reviewer_active",
            ["reviewer_id"],
            unique=False,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(
            "ux_reviews_task_open",
            ["task_seq"],
            unique=True,
            sqlite_where=sa.text("status IN ('awaiting', 'active')"),
            postgresql_where=sa.text("status IN ('awaiting', 'active')"),
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("review_value", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "rework",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
    _note_reworks_in_flight()


def _note_reworks_in_flight() -> None:
    """Tasks an audit sent back before this revision showed their labelers the comment of the
    last audit; they now read it from ``rework``."""
    tasks = sa.table(
        "tasks",
        sa.column("seq", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("customer_review_status", sa.String()),
        sa.column("audits", steelyard.db.base.JSONDoc),
        sa.column("rework", steelyard.db.base.JSONDoc),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(tasks.c.seq, tasks.c.audits).where(
            tasks.c.status == "pending", tasks.c.customer_review_status == "rejected"
        )
    ).all()
    for seq, audits in rows:
        if audits and audits[-1].get("audit_result") == "rejected":
            note = {"audit_comment": audits[-1].get("comments")}
            conn.execute(sa.update(tasks).where(tasks.c.seq == seq).values(rework=note))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("rework")
        batch_op.drop_column("review_value")
        batch_op.drop_column("review_mode")

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_reviews_task_open",
            sqlite_where=sa.text("status IN ('awaiting', 'active')"),
            postgresql_where=sa.text("status IN ('awaiting', 'active')"),
        )
        batch_op.drop_index(
            "ix_reviews_reviewer_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index("ix_reviews_project_status")
        batch_op.drop_index("ix_reviews_org_status")
        batch_op.drop_index(
            "ix_reviews_active_expiry",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.drop_table("reviews")
