"""Every callback attempt, for customers to inspect and for support to debug."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base, BigId, UTCDateTime, new_id, utcnow


class CallbackDelivery(Base):
    __tablename__ = "callback_deliveries"
    __table_args__ = (
        Index("ix_callback_deliveries_task", "task_id"),
        Index("ix_callback_deliveries_job", "job_id"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(BigId)
    task_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    url: Mapped[str] = mapped_column(String(2000))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
