"""Assignments (a worker's lease on a task) and the labels workers submit."""

from __future__ import annotations

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
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base, JSONDoc, UTCDateTime, new_id, utcnow

SeqRef = BigInteger().with_variant(Integer(), "sqlite")
_ACTIVE = text("status = 'active'")


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_task", "task_seq", "status"),
        Index("ix_assignments_user", "user_id", "status"),
        # A worker holds at most one live lease (the target of the lease insert's ON CONFLICT).
        Index(
            "ux_assignments_user_active",
            "user_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index(
            "ix_assignments_active_expiry",
            "expires_at",
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        # "Has this worker labeled or skipped this task": probed per candidate by next.
        Index("ix_assignments_task_user", "task_seq", "user_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    task_seq: Mapped[int] = mapped_column(SeqRef, ForeignKey("tasks.seq", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: active → submitted | expired | released | skipped
    status: Mapped[str] = mapped_column(String(20), default="active")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_task", "task_seq"),
        Index("ix_labels_user", "user_id"),
        # The refit check counts recent labels (``worker_models.due``).
        Index("ix_labels_created", "created_at"),
        Index("ux_labels_task_user", "task_seq", "user_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    task_seq: Mapped[int] = mapped_column(SeqRef, ForeignKey("tasks.seq", ondelete="CASCADE"))
    assignment_id: Mapped[str] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    response: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when a customer's audit rejected the task this label helped complete
    #: (``workflow.rework``): kept, but no longer aggregated.
    superseded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class QualityAnswer(Base):
    """A worker's lease on, and answer to, an evaluation (hidden gold) or training task.

    Served through the same ``next``/``submit`` routes as live tasks; its ``id`` is the
    assignment id the worker sees, so gold is indistinguishable from live work. A worker answers
    an item once per ``attempt`` (a qualification retaken is a new attempt). ``score`` in [0, 1]
    compares the response with the expected one (the task type's measure); ``correct`` is
    ``score`` at or above the type's pass level.
    """

    __tablename__ = "quality_answers"
    __table_args__ = (
        Index("ux_quality_answers_item_user", "quality_task_id", "user_id", "attempt", unique=True),
        # One live lease per worker, as for live tasks.
        Index(
            "ux_quality_answers_user_active",
            "user_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_quality_answers_project_user", "project_id", "user_id", "kind", "status"),
        Index("ix_quality_answers_submitted", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    quality_task_id: Mapped[str] = mapped_column(ForeignKey("quality_tasks.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: "evaluation" | "training", copied from the quality task.
    kind: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: active → submitted | expired | released | skipped
    status: Mapped[str] = mapped_column(String(20), default="active")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    correct: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class GoldCount(Base):
    """Items served to one worker in one project with a gold rate: the live leases and the
    evaluation leases, from which ``workflow.quality_serving`` decides, deterministically,
    whether the worker's next item there is gold (kept here because counting a worker's labels
    per ``next`` would grow with their history)."""

    __tablename__ = "gold_counts"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    live_served: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_served: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


_OPEN_PAUSE = text("status IN ('paused', 'appealed')")


class WorkerPause(Base):
    """A worker paused from a project because their measured quality fell below its threshold.

    Never silent: ``reason`` and ``evidence`` (the figures and gold items it rests on) are shown
    to the worker, who may appeal; someone other than the worker decides (``decided_by``):
    ``lifted`` (back to work) or ``upheld``. At most one open pause per worker and project.
    """

    __tablename__ = "worker_pauses"
    __table_args__ = (
        Index(
            "ux_worker_pauses_open",
            "project_id",
            "user_id",
            unique=True,
            sqlite_where=_OPEN_PAUSE,
            postgresql_where=_OPEN_PAUSE,
        ),
        Index("ix_worker_pauses_org_status", "org_id", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: paused → appealed → lifted | upheld (a paused one may also be lifted without appeal)
    status: Mapped[str] = mapped_column(String(20), default="paused")
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    appeal: Mapped[str | None] = mapped_column(Text, nullable=True)
    appealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision: Mapped[str | None] = mapped_column(Text, nullable=True)


_OPEN_REVIEW = text("status IN ('awaiting', 'active')")
_ACTIVE_REVIEW = text("status = 'active'")


class Review(Base):
    """A task whose labels are in and aggregated, waiting for a reviewer (``workflow.review``),
    and what the reviewer decided.

    One row per review round: ``awaiting`` → ``active`` (a reviewer's lease, by compare-and-set;
    back to ``awaiting`` when released or expired) → ``accepted`` | ``fixed`` | ``rejected``.
    At most one open round per task. ``candidate`` and ``confidence`` are the aggregate the
    labels gave; ``response`` the reviewer's fix; ``comment`` the reason for a rejection;
    ``active_seconds`` the time from taking the review to deciding it (what pay is based on).
    """

    __tablename__ = "reviews"
    __table_args__ = (
        Index(
            "ux_reviews_task_open",
            "task_seq",
            unique=True,
            sqlite_where=_OPEN_REVIEW,
            postgresql_where=_OPEN_REVIEW,
        ),
        # The queue (oldest first) and the counts by status, per project.
        Index("ix_reviews_project_status", "project_id", "status", "created_at", "id"),
        # A reviewer's next across the organization's projects.
        Index("ix_reviews_org_status", "org_id", "status", "created_at", "id"),
        Index(
            "ix_reviews_reviewer_active",
            "reviewer_id",
            sqlite_where=_ACTIVE_REVIEW,
            postgresql_where=_ACTIVE_REVIEW,
        ),
        Index(
            "ix_reviews_active_expiry",
            "expires_at",
            sqlite_where=_ACTIVE_REVIEW,
            postgresql_where=_ACTIVE_REVIEW,
        ),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    task_seq: Mapped[int] = mapped_column(SeqRef, ForeignKey("tasks.seq", ondelete="CASCADE"))
    #: Why the task is here: "sampled" | "all" | "disagreement".
    reason: Mapped[str] = mapped_column(String(20))
    candidate: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: awaiting → active → accepted | fixed | rejected (active → awaiting on release or expiry)
    status: Mapped[str] = mapped_column(String(20), default="awaiting")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewer_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    active_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
