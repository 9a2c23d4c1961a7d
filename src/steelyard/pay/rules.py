"""The pay ledger's arithmetic, pure (no database): periods, active time, the minimum top-up,
and the double-entry invariants the tests check against the stored ledger.

Money is whole minor units throughout; rounding happens once, always in the worker's favour
(a top-up rounds up), so no worker ends a closed period below the floor by a fraction of a cent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# --- periods ---------------------------------------------------------------------------------


def week_of(moment: datetime) -> str:
    """The ISO week ``moment`` (UTC) falls in: ``2026-W49``."""
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(period: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of an ISO week label (Monday 00:00 UTC to the next Monday)."""
    try:
        year, week = period.split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ValueError(f"{period!r} is not a week (like 2026-W49).") from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start, start + timedelta(days=7)


def next_week(period: str) -> str:
    return week_of(week_bounds(period)[1])


def period_of(moment: datetime, closed_ends: Mapping[str, datetime]) -> str:
    """The period work completed at ``moment`` counts in: its week, unless that week was closed
    early (``closed_ends``: period → end of its closed window) before ``moment``, in which case
    the next one (``close-period`` without ``--period`` closes the current week as of now)."""
    period = week_of(moment)
    while period in closed_ends and moment > closed_ends[period]:
        period = next_week(period)
    return period


# --- active time -----------------------------------------------------------------------------


def active_seconds(started: datetime, submitted: datetime, last_expiry: datetime) -> float:
    """Seconds of a lease counted as work: from taking it to submitting it, but not past the
    lease's last expiry. The lease records one expiry (its last heartbeat plus the lease
    length), not each beat: time after it is a silence longer than a whole lease, the one idle
    gap the server can prove; gaps between beats within a lease are not visible."""
    end = min(submitted, max(started, last_expiry))
    return max(0.0, (end - started).total_seconds())


# --- amounts ---------------------------------------------------------------------------------


def piece_amount(piece_minor: int, hourly_minor: int, seconds: float) -> int:
    """What one completed item earns: its piece rate plus the hourly rate on its active time
    (rounded half up to a minor unit)."""
    return piece_minor + (int(hourly_minor * seconds + 1800) // 3600 if hourly_minor else 0)


def _millis(seconds: float) -> int:
    # Whole milliseconds, rounded up: time is never shortened against the worker.
    return math.ceil(seconds * 1000)


def floor_for(seconds: float, hourly_floor_minor: int) -> int:
    """The least a worker must earn for ``seconds`` of active time, rounded up."""
    numerator = _millis(seconds) * hourly_floor_minor
    return -(-numerator // 3_600_000)


def top_up(earned_minor: int, seconds: float, hourly_floor_minor: int) -> int:
    """The minimum top-up: what brings ``earned_minor`` for ``seconds`` up to the floor."""
    return max(0, floor_for(seconds, hourly_floor_minor) - earned_minor)


def effective_hourly(earned_minor: int, seconds: float) -> int | None:
    """Earnings per active hour, in minor units (rounded down); ``None`` without active time."""
    millis = _millis(seconds)
    if millis <= 0:
        return None
    return earned_minor * 3_600_000 // millis


# --- double entry ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Posting:
    """One side of an entry: ``account`` is ``"organization"`` or ``"worker:<user id>"``."""

    entry: str
    account: str
    amount_minor: int


def postings(entry_id: str, user_id: str, amount_minor: int) -> tuple[Posting, Posting]:
    """An entry's two postings: the worker's balance gains ``amount_minor`` (a payout is
    negative), the organization's liability account the opposite."""
    return (
        Posting(entry_id, f"worker:{user_id}", amount_minor),
        Posting(entry_id, "organization", -amount_minor),
    )


def balances(all_postings: Iterable[Posting]) -> dict[str, int]:
    """Each account's balance: the sum of its postings (the replay of the ledger)."""
    totals: dict[str, int] = {}
    for p in all_postings:
        totals[p.account] = totals.get(p.account, 0) + p.amount_minor
    return totals


@dataclass(frozen=True, slots=True)
class WorkerPeriod:
    """One worker's figures for a period, as ``close-period`` reports them."""

    user_id: str
    active_seconds: float
    earned_minor: int
    top_up_minor: int

    @property
    def effective_hourly_minor(self) -> int | None:
        return effective_hourly(self.earned_minor + self.top_up_minor, self.active_seconds)


def close(
    figures: Mapping[str, tuple[float, int]],
    hourly_floor_minor: int,
    topped_up: Mapping[str, int],
) -> list[WorkerPeriod]:
    """Per worker (``figures``: user → active seconds, earnings in the period), the top-up still
    owed: none when one was already written (``topped_up``), so closing twice adds nothing."""
    out = []
    for user_id in sorted(figures):
        seconds, earned = figures[user_id]
        if user_id in topped_up:
            owed = topped_up[user_id]
        else:
            owed = top_up(earned, seconds, hourly_floor_minor)
        out.append(WorkerPeriod(user_id, seconds, earned, owed))
    return out
