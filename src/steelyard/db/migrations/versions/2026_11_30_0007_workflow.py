"""workflow engine: redundant labels, counted leases, skips

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:00:00

A task records how many labels it needs (``labels_needed``: k, or an adaptive project's
minimum, raised one at a time up to ``labels_max`` while the aggregate's confidence is below
``target_confidence``) and keeps two counters that the assignment path compares and sets:
``labels_done`` and ``leases_open`` (active assignments, expired or not, until reclaimed).
``lease_expires_at`` is no longer read (a task has as many leases as it needs).

Assignments: at most one ``active`` row per worker (a partial unique index, also the target of
``ON CONFLICT`` when a lease is inserted), a partial index on the active rows' expiry for the
reaper, and ``(task_seq, user_id, status)`` for "has this worker labeled or skipped it".
Labels: one per worker and task.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    # Plain ADD COLUMN with a default: no table rebuild on SQLite (its triggers stay).
    op.add_column(
        "tasks", sa.Column("labels_needed", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "tasks", sa.Column("labels_max", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("tasks", sa.Column("target_confidence", sa.Float(), nullable=True))
    op.add_column(
        "tasks", sa.Column("labels_done", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "tasks", sa.Column("leases_open", sa.Integer(), nullable=False, server_default="0")
    )
    # A task completed before this migration had its one label.
    op.execute(
        "UPDATE tasks SET labels_done = 1 WHERE status = 'completed' AND EXISTS "
        "(SELECT 1 FROM labels WHERE labels.task_seq = tasks.seq)"
    )
    # Live leases of the old scheme become counted ones.
    op.execute(
        "UPDATE tasks SET leases_open = (SELECT count(*) FROM assignments a "
        "WHERE a.task_seq = tasks.seq AND a.status = 'active') WHERE status = 'pending'"
    )
    # A worker may have held several stale ``active`` rows under the old scheme.
    op.execute(
        "UPDATE assignments SET status = 'expired' WHERE status = 'active' AND id NOT IN "
        "(SELECT max(id) FROM assignments WHERE status = 'active' GROUP BY user_id)"
    )
    op.execute(
        "UPDATE tasks SET leases_open = (SELECT count(*) FROM assignments a "
        "WHERE a.task_seq = tasks.seq AND a.status = 'active') WHERE leases_open > 0"
    )
    op.create_index(
        "ux_assignments_user_active",
        "assignments",
        ["user_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_assignments_active_expiry",
        "assignments",
        ["expires_at"],
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index("ix_assignments_task_user", "assignments", ["task_seq", "user_id", "status"])
    op.create_index("ux_labels_task_user", "labels", ["task_seq", "user_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_labels_task_user", table_name="labels")
    op.drop_index("ix_assignments_task_user", table_name="assignments")
    op.drop_index("ix_assignments_active_expiry", table_name="assignments")
    op.drop_index("ux_assignments_user_active", table_name="assignments")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for column in ("leases_open", "labels_done", "target_confidence", "labels_max"):
            batch_op.drop_column(column)
        batch_op.drop_column("labels_needed")
