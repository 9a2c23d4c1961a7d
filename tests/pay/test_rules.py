"""The pay ledger's arithmetic as properties: any sequence of work, top-ups and payouts leaves a
ledger that sums to zero, balances equal the replay of the entries, nobody below the floor after
a close, and closing twice adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.errors import ValidationError
from steelyard.pay import rules
from steelyard.projects import pay_settings

WORKERS = ["a", "b", "c", "d"]

work = st.lists(
    st.tuples(
        st.sampled_from(WORKERS),
        st.integers(0, 5000),  # piece rate, minor units
        st.floats(0, 7200, allow_nan=False),  # active seconds
    ),
    max_size=60,
)


def _ledger(items: list[tuple[str, int, float]], floor: int) -> tuple[list[rules.Posting], dict]:
    entries: list[rules.Posting] = []
    figures: dict[str, tuple[float, int]] = {}
    for n, (user, piece, seconds) in enumerate(items):
        entries += rules.postings(f"e{n}", user, piece)
        s, e = figures.get(user, (0.0, 0))
        figures[user] = (s + seconds, e + piece)
    return entries, figures


@settings(max_examples=200, deadline=None)
@given(work, st.integers(1, 10**6), st.lists(st.sampled_from(WORKERS), max_size=4))
def test_ledger_balances_and_the_floor(
    items: list[tuple[str, int, float]], floor: int, paid_out: list[str]
) -> None:
    postings, figures = _ledger(items, floor)
    closed = rules.close(figures, floor, {})
    for w in closed:
        postings += rules.postings(f"top-{w.user_id}", w.user_id, w.top_up_minor)
        # Nobody ends the period below the floor (to the minor unit, rounded in their favour).
        assert (w.earned_minor + w.top_up_minor) * 3600 >= floor * w.active_seconds
        assert w.top_up_minor >= 0
        if w.effective_hourly_minor is not None:
            assert w.effective_hourly_minor >= floor
    # Payouts zero the balances they pay.
    before = rules.balances(postings)
    for user in set(paid_out):
        postings += rules.postings(f"pay-{user}", user, -before.get(f"worker:{user}", 0))
    replay = rules.balances(postings)
    assert sum(p.amount_minor for p in postings) == 0
    assert sum(replay.values()) == 0
    for user in WORKERS:
        expected = sum(p.amount_minor for p in postings if p.account == f"worker:{user}")
        assert replay.get(f"worker:{user}", 0) == expected
        if user in paid_out:
            assert replay[f"worker:{user}"] == 0
    # Closing twice: what was topped up is kept, nothing more is owed.
    again = rules.close(figures, floor, {w.user_id: w.top_up_minor for w in closed})
    assert again == closed


@given(st.integers(0, 10**6), st.floats(0, 10**6, allow_nan=False), st.integers(1, 10**5))
def test_top_up_is_the_least_that_reaches_the_floor(
    earned: int, seconds: float, floor: int
) -> None:
    owed = rules.top_up(earned, seconds, floor)
    assert owed >= 0
    assert (earned + owed) * 3600 >= seconds * floor
    if owed > 0:
        assert (earned + owed - 1) * 3600 < (seconds + 0.001) * floor


def test_active_time_stops_at_the_last_expiry() -> None:
    t0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert rules.active_seconds(t0, t0 + timedelta(seconds=90), t0 + timedelta(seconds=600)) == 90
    # Submitted 5 minutes after the lease ran out: the silence is not counted.
    late = rules.active_seconds(t0, t0 + timedelta(seconds=900), t0 + timedelta(seconds=600))
    assert late == 600


def test_periods_are_iso_weeks_and_an_early_close_moves_later_work_on() -> None:
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    assert rules.week_of(monday) == "2026-W49"
    assert rules.week_bounds("2026-W49") == (monday, monday + timedelta(days=7))
    assert rules.week_of(monday - timedelta(microseconds=1)) == "2026-W48"
    wed = monday + timedelta(days=2)
    # Closed as of Wednesday: work completed then counts, work a moment later is next week's.
    assert rules.period_of(wed, {"2026-W49": wed}) == "2026-W49"
    assert rules.period_of(wed + timedelta(microseconds=1), {"2026-W49": wed}) == "2026-W50"
    with pytest.raises(ValueError):
        rules.week_bounds("2026-49")


def test_currency_exponents_come_from_babel() -> None:
    assert pay_settings.to_minor(15, "USD") == 1500
    assert pay_settings.to_minor("15.00", "EUR") == 1500
    assert pay_settings.to_minor(1500, "JPY") == 1500
    assert pay_settings.to_minor("1.5", "KWD") == 1500
    assert pay_settings.format_minor(1550, "USD") == "$15.50"
    with pytest.raises(ValidationError) as info:
        pay_settings.read({"pay": {"piece_rate_minor": 1, "currency": "XYZ"}})
    assert info.value.field == "params.pay.currency"
