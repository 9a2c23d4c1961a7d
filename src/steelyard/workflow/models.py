"""Assignments (a worker's lease on a task) and the labels workers submit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, false, text
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
