"""Tasks, their tags, per-scope status counters, and gold (evaluation/training) tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base, BigId, JSONDoc, UTCDateTime, new_id, utcnow

TASK_STATUSES = ("pending", "completed", "canceled", "error")
TERMINAL_STATUSES = ("completed", "canceled", "error")


class Task(Base):
    """One unit of labeling work.

    ``seq`` is the internal, monotonically increasing key: list pages are keyset ranges over it
    (``next_token`` encodes the last ``seq``), so every filter the Scale client sends has an
    index that ends in ``seq`` and a page never scans or sorts the table.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("org_id", "is_test", "unique_id"),
        Index("ix_tasks_scope_seq", "org_id", "is_test", "seq"),
        Index("ix_tasks_scope_status_seq", "org_id", "is_test", "status", "seq"),
        # Project and batch indexes lead with the scope columns every query carries, so the
        # planner prefers them over the scope index even before ANALYZE has run.
        Index("ix_tasks_project_seq", "org_id", "is_test", "project_id", "seq"),
        Index("ix_tasks_project_status_seq", "org_id", "is_test", "project_id", "status", "seq"),
        Index("ix_tasks_batch_seq", "org_id", "is_test", "batch_id", "seq"),
        Index("ix_tasks_batch_status_seq", "org_id", "is_test", "batch_id", "status", "seq"),
        Index("ix_tasks_scope_created", "org_id", "is_test", "created_at"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(24), unique=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    is_test: Mapped[bool] = mapped_column(Boolean)
    #: Scale lets a task be created without a project; most have one.
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), nullable=True
    )
    type: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    instruction: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDoc, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    unique_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    callback_succeeded: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    customer_review_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    customer_review_comments: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    prior_responses: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    audits: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Unused since migration 0007 (a task has as many leases as it needs: ``leases_open``).
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Labels the task needs before it is aggregated: the project's k, or its adaptive minimum,
    #: raised one at a time up to ``labels_max`` while the aggregate's confidence is below
    #: ``target_confidence`` (``None``: fixed redundancy). Recorded at create.
    labels_needed: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    labels_max: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    target_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Compared and set by the assignment path (``workflow.leases``): labels stored, and
    #: active assignments (expired ones too, until the reaper reclaims them).
    labels_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    leases_open: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The project's review setting when the task was created (``workflow.review``): ``None``
    #: for no review, else the mode, with its fraction or agreement threshold.
    review_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    review_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Why a task is being labeled again (``workflow.rework``), shown to its next workers:
    #: ``{"audit_comment": ...}`` or ``{"review_comment": ...}``; cleared when it completes.
    rework: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)


# Work order for ``POST /api/work/next`` (migration 0009): over the pending tasks only, higher
# ``priority`` first, then oldest; by organization, project and batch.
_PENDING = text("status = 'pending'")
for _name, _lead in (
    ("ix_tasks_pending_order", ()),
    ("ix_tasks_project_pending_order", (Task.project_id,)),
    ("ix_tasks_batch_pending_order", (Task.batch_id,)),
):
    Index(
        _name,
        Task.org_id,
        Task.is_test,
        *_lead,
        Task.priority.desc(),
        Task.seq,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


@dataclass(slots=True)
class TaskRow:
    """A task as just inserted, without the ORM: what the create path answers with.

    Same attribute names as ``Task`` (``tests/tasks/test_create_service.py`` checks they stay
    in step), so ``serialize.task_to_scale`` takes either.
    """

    seq: int
    task_id: str
    org_id: str
    is_test: bool
    project_id: str | None
    batch_id: str | None
    type: str
    status: str
    instruction: str | None
    params: dict[str, Any]
    response: dict[str, Any] | None
    confidence: float | None
    metadata_: dict[str, Any]
    tags: list[str]
    unique_id: str | None
    callback_url: str | None
    callback_succeeded: bool | None
    priority: int
    customer_review_status: str | None
    customer_review_comments: list[str]
    prior_responses: list[Any]
    audits: list[dict[str, Any]]
    error: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    labels_needed: int
    labels_max: int
    target_confidence: float | None
    labels_done: int
    leases_open: int
    review_mode: str | None
    review_value: float | None
    rework: dict[str, Any] | None


class TaskTag(Base):
    __tablename__ = "task_tags"
    __table_args__ = (Index("ix_task_tags_tag", "org_id", "tag", "task_seq"),)

    task_seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("tasks.seq", ondelete="CASCADE"),
        primary_key=True,
    )
    tag: Mapped[str] = mapped_column(String(300), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(24))


class TaskCount(Base):
    """How many tasks a scope has in each status, kept in the same transaction as the change.

    The Scale list call returns ``total`` (the full filtered count) on every page; counting a
    million rows per page would dominate its latency, so the common filter shapes (project,
    batch, status, type) are answered from these rows instead.
    """

    __tablename__ = "task_counts"

    org_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    is_test: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    #: ``""`` for tasks outside any batch (a primary key column cannot be NULL).
    batch_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    type: Mapped[str] = mapped_column(String(60), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class QualityTask(Base):
    """An evaluation (hidden gold) or training (onboarding) task with its expected answer."""

    __tablename__ = "quality_tasks"
    __table_args__ = (Index("ix_quality_tasks_project", "project_id", "kind"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    is_test: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(20))  # "evaluation" | "training"
    type: Mapped[str] = mapped_column(String(60))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    expected_response: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    initial_response: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
