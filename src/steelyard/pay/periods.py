"""Closing a pay period: sweep its work, then top every worker up to the hourly floor.

A period is an ISO week (UTC) by default. Closing one records its window; closing the current
week as of now ends its window now, and work completed later counts in the next week (which
then starts where this one ended, and is closed once it has begun). Closing twice adds
nothing: the sweep pays work once by its id, and a worker's top-up for a period is one entry
keyed by the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steelyard.accounts.models import Membership, User
from steelyard.config import Settings
from steelyard.errors import ValidationError
from steelyard.pay import rules
from steelyard.pay.ledger import NewEntry, org_pay, post
from steelyard.pay.models import EARNING_TYPES, MINIMUM_TOP_UP, PayEntry, PayPeriod
from steelyard.pay.sweep import sweep


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    period: str
    starts_at: datetime
    ends_at: datetime
    currency: str
    floor_minor: int
    workers: list[tuple[str, rules.WorkerPeriod]]

    def to_doc(self) -> dict[str, object]:
        return {
            "period": self.period,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "currency": self.currency,
            "floor_hourly_minor": self.floor_minor,
            "workers": [
                {
                    "email": email,
                    "active_seconds": round(w.active_seconds, 3),
                    "earned_minor": w.earned_minor,
                    "top_up_minor": w.top_up_minor,
                    "effective_hourly_minor": w.effective_hourly_minor,
                }
                for email, w in self.workers
            ],
        }


def _window(session: Session, org_id: str, period: str, now: datetime) -> tuple[datetime, datetime]:
    start, end = rules.week_bounds(period)
    # After a week closed early, the next one starts where it ended.
    previous = session.get(PayPeriod, (org_id, rules.week_of(start - (end - start))))
    if previous is not None:
        start = previous.ends_at
    return start, min(end, now)


def close_period(
    session: Session,
    org_id: str,
    settings: Settings,
    now: datetime,
    period: str | None = None,
    swept: list[NewEntry] | None = None,
) -> ClosedPeriod:
    """Close ``period`` (default: the current week, as of ``now``) for the organization: its
    work swept into the ledger, and a ``minimum_top_up`` entry for each worker whose earnings
    over their active time fall below the floor. ``swept``: the sweep's entries, read before
    this write opened (``sweep.pending`` up to ``now``), so that the write does not scan the
    organization's work."""
    # The current week, even when already closed: closing it again reports it, adds nothing.
    label = period or rules.week_of(now)
    try:
        nominal_start, _ = rules.week_bounds(label)
    except ValueError as exc:
        raise ValidationError(str(exc), field="period") from None
    if nominal_start > now:
        raise ValidationError(f"Period {label} has not started.", field="period")
    org = org_pay(session, org_id, settings)
    done = session.get(PayPeriod, (org_id, label))
    if done is None:
        start, end = _window(session, org_id, label, now)
        # Work completed in the window, and any earlier work not yet swept.
        if swept is None:
            sweep(session, org_id, org, end, now)
        else:
            post(session, org_id, swept, now)
        done = PayPeriod(
            org_id=org_id,
            period=label,
            starts_at=start,
            ends_at=end,
            closed_at=now,
            floor_minor=org.floor_minor,
            currency=org.currency,
        )
        session.add(done)
        session.flush()
    figures = _figures(session, org_id, label)
    topped = dict(
        session.execute(
            select(PayEntry.user_id, PayEntry.amount_minor).where(
                PayEntry.org_id == org_id,
                PayEntry.type == MINIMUM_TOP_UP,
                PayEntry.period == label,
            )
        ).all()
    )
    workers = rules.close(figures, done.floor_minor, topped)
    post(
        session,
        org_id,
        [
            NewEntry(
                user_id=w.user_id,
                type=MINIMUM_TOP_UP,
                amount_minor=w.top_up_minor,
                currency=done.currency,
                reason=f"minimum hourly pay for {label}: {w.active_seconds / 3600:.2f} active "
                f"hours at {done.floor_minor} {done.currency} minor units an hour",
                source_kind="period",
                source_id=label,
                period=label,
                occurred_at=now,
                active_seconds=0.0,
            )
            for w in workers
            if w.top_up_minor > 0 and w.user_id not in topped
        ],
        now,
    )
    emails = dict(
        session.execute(
            select(User.id, User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, User.id.in_(list(figures)))
        ).all()
    )
    return ClosedPeriod(
        label,
        done.starts_at,
        done.ends_at,
        done.currency,
        done.floor_minor,
        [(emails.get(w.user_id, w.user_id), w) for w in workers],
    )


def _figures(session: Session, org_id: str, period: str) -> dict[str, tuple[float, int]]:
    """Per worker: active seconds and earnings (piece rates, bonuses, adjustments) in the
    period."""
    rows = session.execute(
        select(
            PayEntry.user_id,
            func.sum(PayEntry.active_seconds),
            func.sum(PayEntry.amount_minor),
        )
        .where(
            PayEntry.org_id == org_id,
            PayEntry.period == period,
            PayEntry.type.in_(EARNING_TYPES),
        )
        .group_by(PayEntry.user_id)
    ).all()
    return {user: (float(seconds or 0.0), int(earned or 0)) for user, seconds, earned in rows}
