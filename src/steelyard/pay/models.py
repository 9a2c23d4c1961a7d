"""The pay ledger's tables: entries, their postings, closed periods, organization pay settings.

Append-only: nothing here is updated or deleted by the application; a correction is a new
entry (``adjustment``). Each entry moves an amount between two accounts, the organization's
liability and the worker's balance, as two postings that sum to zero (double entry); a balance
is the sum of an account's postings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from steelyard.db.base import Base, UTCDateTime, new_id, utcnow

Amount = BigInteger().with_variant(Integer(), "sqlite")

#: Entry types.
PIECE_RATE = "piece_rate"
BONUS = "bonus"
MINIMUM_TOP_UP = "minimum_top_up"
ADJUSTMENT = "adjustment"
PAYOUT = "payout"
TYPES = (PIECE_RATE, BONUS, MINIMUM_TOP_UP, ADJUSTMENT, PAYOUT)
#: Types that count as earnings for the minimum guarantee (a top-up itself does not).
EARNING_TYPES = (PIECE_RATE, BONUS, ADJUSTMENT)

#: Accounts.
ORGANIZATION = "organization"
WORKER = "worker"


class PayEntry(Base):
    """One movement of money owed, with what it is for: ``source_kind``/``source_id`` name the
    object it comes from (a ``label``, ``quality_answer``, ``review``, or a closed ``period``
    for a top-up), unique per type and worker, so the same work is never paid twice however
    often the sweep runs. ``active_seconds`` is the work's measured active time (what the
    minimum guarantee weighs); ``amount_minor`` the worker's side (the organization's posting
    is its negation)."""

    __tablename__ = "pay_entries"
    __table_args__ = (
        Index(
            "ux_pay_entries_source",
            "org_id",
            "type",
            "source_kind",
            "source_id",
            "user_id",
            unique=True,
        ),
        Index("ix_pay_entries_org_period_user", "org_id", "period", "user_id"),
        Index("ix_pay_entries_user", "user_id", "created_at"),
        # The estimated time per item: a project's most recent piece-rate entries.
        Index("ix_pay_entries_project", "project_id", "type", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), nullable=True
    )
    type: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    source_kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(64))
    #: The pay period it counts in (``2026-W49``).
    period: Mapped[str] = mapped_column(String(16))
    active_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: When the work was completed (for a top-up or payout: when it was written).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PayPosting(Base):
    """One side of an entry: ``account`` is ``organization`` (``user_id`` NULL) or ``worker``;
    the two postings of an entry sum to zero."""

    __tablename__ = "pay_postings"
    __table_args__ = (
        Index("ix_pay_postings_entry", "entry_id"),
        Index("ix_pay_postings_account", "org_id", "account", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True, default=new_id)
    entry_id: Mapped[str] = mapped_column(ForeignKey("pay_entries.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    amount_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))


class PayPeriod(Base):
    """A closed pay period: its window from ``starts_at`` to ``ends_at``; work completed after
    ``ends_at`` counts in the next period."""

    __tablename__ = "pay_periods"

    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    floor_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))


class PayOrgSettings(Base):
    """An organization's own pay settings: its currency (else ``STEELYARD_WAGE_CURRENCY``) and
    an hourly floor in minor units, which may only be higher than ``STEELYARD_MIN_HOURLY_WAGE``."""

    __tablename__ = "pay_org_settings"

    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    min_hourly_minor: Mapped[int | None] = mapped_column(Amount, nullable=True)
