"""The counts every serving process shares: requests per bucket per one-minute window."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base


class RateLimitBucket(Base):
    """Requests admitted in one window for one bucket (``a:<address>``, ``k:<key hash>``...).

    Rows live for two windows (the sliding estimate reads the previous one) and are then purged.
    """

    __tablename__ = "rate_limit_buckets"

    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    #: Epoch seconds at which the window starts (a multiple of its length).
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
