"""gold answers and worker pauses

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 15:40:00

Evaluation (hidden gold) and training tasks are served through the same ``next``/``submit``
routes as live tasks: ``quality_answers`` holds a worker's lease on one and their answer with
its score (one live lease per worker, a partial unique index as on ``assignments``; one answer
per item, worker and attempt). ``worker_pauses`` records a worker paused from a project for
quality below its threshold, with the reason, the evidence, the appeal and who decided it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import steelyard.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_pauses",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("appeal", sa.Text(), nullable=True),
        sa.Column("appealed_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=24), nullable=True),
        sa.Column("decided_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_worker_pauses_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_worker_pauses_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_worker_pauses_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_worker_pauses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_pauses")),
    )
    with op.batch_alter_table("worker_pauses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_worker_pauses_org_status", ["org_id", "status", "created_at"], unique=False
        )
        batch_op.create_index(
            "ux_worker_pauses_open",
            ["project_id", "user_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('paused', 'appealed')"),
            postgresql_where=sa.text("status IN ('paused', 'appealed')"),
        )

    op.create_table(
        "quality_answers",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("quality_task_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", steelyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active_seconds", sa.Float(), nullable=True),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_quality_answers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_quality_answers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quality_task_id"],
            ["quality_tasks.id"],
            name=op.f("fk_quality_answers_quality_task_id_quality_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_quality_answers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_answers")),
    )
    with op.batch_alter_table("quality_answers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_answers_project_user",
            ["project_id", "user_id", "kind", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ux_quality_answers_item_user", ["quality_task_id", "user_id", "attempt"], unique=True
        )
        batch_op.create_index(
            "ux_quality_answers_user_active",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("quality_answers", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_quality_answers_user_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index("ux_quality_answers_item_user")
        batch_op.drop_index("ix_quality_answers_project_user")

    op.drop_table("quality_answers")
    with op.batch_alter_table("worker_pauses", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_worker_pauses_open",
            sqlite_where=sa.text("status IN ('paused', 'appealed')"),
            postgresql_where=sa.text("status IN ('paused', 'appealed')"),
        )
        batch_op.drop_index("ix_worker_pauses_org_status")

    op.drop_table("worker_pauses")
