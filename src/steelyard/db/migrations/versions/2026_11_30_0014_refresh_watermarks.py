"""refresh watermarks: time indexes on labels and gold answers

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 17:00:00

The job runner asks every 30 s which projects' worker models are due for a refit
(``workflow.worker_models.due``). It now counts only the labels and gold answers newer than a
window, so it needs them by time: ``labels.created_at`` and ``quality_answers.submitted_at``.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_labels_created", "labels", ["created_at"])
    op.create_index("ix_quality_answers_submitted", "quality_answers", ["submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_quality_answers_submitted", table_name="quality_answers")
    op.drop_index("ix_labels_created", table_name="labels")
