"""Payouts: one batch per closed period, paying each worker's balance from that period and
before, as ``payout`` entries that zero those balances, and the rows of a CSV for whatever
payment system the organization uses. A second run for the same period adds nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steelyard.accounts.models import User
from steelyard.errors import ValidationError
from steelyard.pay.ledger import NewEntry, post
from steelyard.pay.models import PAYOUT, PayEntry, PayPeriod
from steelyard.projects.pay_settings import exponent

CSV_HEADER = ("worker", "amount", "currency", "reference")


@dataclass(frozen=True, slots=True)
class Payout:
    email: str
    amount_minor: int
    currency: str
    reference: str

    def csv_row(self) -> tuple[str, str, str, str]:
        """The amount in major units (``15.50``), as payment systems take it."""
        major = Decimal(self.amount_minor).scaleb(-exponent(self.currency))
        return (self.email, f"{major:.{exponent(self.currency)}f}", self.currency, self.reference)


def create_payouts(session: Session, org_id: str, period: str, now: datetime) -> list[Payout]:
    """Pay every worker's positive balance in entries of ``period`` (which must be closed, so
    its top-ups are in) and earlier periods. Idempotent: a payout is keyed by the period."""
    closed = session.get(PayPeriod, (org_id, period))
    if closed is None:
        raise ValidationError(
            f"Period {period} is not closed: close it first (steelyard pay close-period).",
            field="period",
        )
    # ISO week labels (2026-W09) sort as they follow each other.
    owed = session.execute(
        select(PayEntry.user_id, PayEntry.currency, func.sum(PayEntry.amount_minor))
        .where(PayEntry.org_id == org_id, PayEntry.period <= period)
        .group_by(PayEntry.user_id, PayEntry.currency)
    ).all()
    reference = f"payout-{period}"
    post(
        session,
        org_id,
        [
            NewEntry(
                user_id=user_id,
                type=PAYOUT,
                amount_minor=-int(amount),
                currency=currency,
                reason=f"payout for {period} and earlier",
                source_kind="payout",
                source_id=period,
                period=period,
                occurred_at=now,
            )
            for user_id, currency, amount in owed
            if amount and int(amount) > 0
        ],
        now,
    )
    rows = session.execute(
        select(User.email, PayEntry.amount_minor, PayEntry.currency, PayEntry.id)
        .join(User, User.id == PayEntry.user_id)
        .where(
            PayEntry.org_id == org_id,
            PayEntry.type == PAYOUT,
            PayEntry.source_kind == "payout",
            PayEntry.source_id == period,
        )
        .order_by(User.email)
    ).all()
    return [
        Payout(email, -int(amount), currency, f"{reference}-{entry_id}")
        for email, amount, currency, entry_id in rows
    ]
