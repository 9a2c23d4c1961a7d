"""work order: next hands out tasks by batch priority, task priority, then age

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 14:15:00

``POST /api/work/next`` walks a worker's eligible pending tasks in work order: a Studio-
prioritized batch's tasks first (one batch at a time), then the rest; within either, higher
task ``priority`` first, then oldest (``seq``). Three partial indexes over the pending tasks
only (a finished task leaves them) give that order without a sort: across the organization,
within a project (``?project=``), within a batch. A literal ``status = 'pending'`` in the
query is what lets both planners use them.

Batches get ``(org_id, is_test, status)``: next reads the organization's open batches (held
back, prioritized or group-restricted ones) on every call.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
ORDER = (sa.text("priority DESC"), "seq")
TASK_INDEXES = {
    "ix_tasks_pending_order": ("org_id", "is_test"),
    "ix_tasks_project_pending_order": ("org_id", "is_test", "project_id"),
    "ix_tasks_batch_pending_order": ("org_id", "is_test", "batch_id"),
}


def upgrade() -> None:
    for name, lead in TASK_INDEXES.items():
        op.create_index(
            name,
            "tasks",
            [*lead, *ORDER],
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )
    op.create_index("ix_batches_scope_status", "batches", ["org_id", "is_test", "status"])


def downgrade() -> None:
    op.drop_index("ix_batches_scope_status", table_name="batches")
    for name in reversed(TASK_INDEXES):
        op.drop_index(name, table_name="tasks")
