"""labels superseded by an audit rejection

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 14:10:00

A customer audit that rejects a completed task sends it back for rework (``workflow.rework``).
Its labels stay (the workers did the work; they are never offered the task again), but they are
marked ``superseded``: the reworked task is aggregated from the fresh labels only, so the
rejected answer does not outvote its correction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a default: no table rebuild on SQLite.
    op.add_column(
        "labels",
        sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_column("superseded")
