"""The ledger's invariants on the database itself (SQLite and PostgreSQL), for any sequence of
earnings written in any batches, the same work sent again, a close, a second close and
payouts: the postings sum to zero, every balance is the replay of its entries, nothing is paid
twice, nobody ends the closed period below the floor, and closing twice adds nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from steelyard.accounts import service as accounts
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.pay import rules
from steelyard.pay.ledger import NewEntry, balance, post
from steelyard.pay.models import BONUS, PAYOUT, PIECE_RATE, PayEntry, PayPosting
from steelyard.pay.periods import close_period

PERIOD = "2026-W10"  # in the past: closable whatever the real date
WHEN = rules.week_bounds(PERIOD)[0]

items = st.lists(
    st.tuples(
        st.integers(0, 2),  # worker
        st.integers(0, 30),  # work id (repeats: the same work sent again)
        st.sampled_from([PIECE_RATE, BONUS]),
        st.integers(0, 400),  # minor units
        st.floats(0, 3600, allow_nan=False),  # active seconds
    ),
    max_size=30,
)


def _entry(user: str, work: int, kind: str, amount: int, seconds: float) -> NewEntry:
    return NewEntry(
        user_id=user,
        type=kind,
        amount_minor=amount,
        currency="USD",
        reason="property test",
        source_kind="label",
        source_id=f"work-{work}",
        period=PERIOD,
        occurred_at=WHEN,
        active_seconds=seconds,
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(items, st.integers(1, 5))
def test_any_ledger_balances_and_reaches_the_floor(
    db: Database, settings: Settings, work: list[tuple[int, int, str, int, float]], batches: int
) -> None:
    with db.unit_of_work() as session:
        org_id = accounts.create_organization(session, f"pay-{uuid.uuid4().hex[:10]}").org.id
        users = [
            accounts.create_user(
                session,
                org_id=org_id,
                email=f"p-{uuid.uuid4().hex[:10]}@example.com",
                password_hash=None,
                role="annotator",
            ).id
            for _ in range(3)
        ]
    entries = [_entry(users[w], n, k, a, s) for w, n, k, a, s in work]
    # The first write of each (type, work, worker) wins; a repeat is skipped.
    firsts: dict[tuple[str, str, str], NewEntry] = {}
    for e in entries:
        firsts.setdefault((e.type, e.source_id, e.user_id), e)
    now = datetime.now(UTC)
    written = 0
    for i in range(batches):
        with db.unit_of_work() as session:
            written += post(session, org_id, entries[i::batches], now)
    assert written == len(firsts)
    with db.unit_of_work() as session:
        first = close_period(session, org_id, settings, now, PERIOD)
    with db.unit_of_work() as session:
        second = close_period(session, org_id, settings, now, PERIOD)
    assert second.to_doc() == first.to_doc()
    for _, w in first.workers:
        assert (w.earned_minor + w.top_up_minor) * 3600 >= first.floor_minor * w.active_seconds
    with db.unit_of_work(write=False) as session:
        rows = session.execute(
            select(PayEntry.user_id, PayEntry.amount_minor).where(PayEntry.org_id == org_id)
        ).all()
        assert len(rows) == len(firsts) + sum(1 for _, w in first.workers if w.top_up_minor)
        for user in users:
            replay = sum(a for u, a in rows if u == user)
            assert balance(session, org_id, user) == replay
        assert balance(session, org_id, None) == -sum(a for _, a in rows)
    # Payouts zero the balances they pay; the ledger still sums to zero.
    with db.unit_of_work() as session:
        owed = {u: balance(session, org_id, u) for u in users}
        post(
            session,
            org_id,
            [
                NewEntry(u, PAYOUT, -amount, "USD", "payout", "payout", f"batch-1:{u}", PERIOD, now)
                for u, amount in owed.items()
                if amount
            ],
            now,
        )
    with db.unit_of_work(write=False) as session:
        assert all(balance(session, org_id, u) == 0 for u in users)
        assert balance(session, org_id, None) == 0
        total = session.scalar(
            select(func.sum(PayPosting.amount_minor)).where(PayPosting.org_id == org_id)
        )
        assert (total or 0) == 0
