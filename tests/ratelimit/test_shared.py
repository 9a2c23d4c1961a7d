"""Limits shared by several processes through the database (each ``SharedLimiter`` with its own
``Database`` plays one serving process)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steelyard.db.engine import Database
from steelyard.ratelimit import repository
from steelyard.ratelimit.shared import SharedLimiter
from steelyard.ratelimit.window import WINDOW, Check, window_start

#: Fake time, in the past: a purge by these limiters never touches the live test server's rows.
T0 = window_start(time.time()) - 10 * WINDOW
TICK = 0.1  # seconds of fake time per step of the schedule


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def second_db(db: Database) -> Iterator[Database]:
    """Another process's view of the same database: its own engine, pool and write lock."""
    other = Database(db.url)
    yield other
    other.dispose()


def _bucket() -> str:
    return f"t:{uuid.uuid4().hex}"


@given(
    limit=st.integers(1, 30),
    every=st.lists(st.integers(1, 4), min_size=2, max_size=2),
    phase=st.lists(st.integers(0, 3), min_size=2, max_size=2),
    start=st.sampled_from([0.0, 55.0, 59.5]),
    load=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_two_processes_stay_within_the_documented_bound(
    db: Database,
    second_db: Database,
    limit: int,
    every: list[int],
    phase: list[int],
    start: float,
    load: list[tuple[int, int]],
) -> None:
    """Each step, each process gets up to ``R`` requests; process i syncs every ``every[i]``
    steps. Per window the two admit at most ``limit + R * 2 * S`` (S: the slower sync) and
    never more than ``2 * limit``; and nothing is refused while the total stays under it."""
    clock = FakeClock(T0 + start)
    limiters = [SharedLimiter(d, clock=clock) for d in (db, second_db)]
    bucket, most = _bucket(), 3
    admitted: Counter[int] = Counter()
    offered: Counter[int] = Counter()
    refused_under_limit = False
    for step, requests in enumerate(load):
        clock.now = T0 + start + step * TICK
        for limiter, n in zip(limiters, requests, strict=True):
            for _ in range(n):
                offered[window_start(clock.now)] += 1
                if limiter.check([Check(bucket, limit)]).allowed:
                    admitted[window_start(clock.now)] += 1
                elif (
                    offered[window_start(clock.now)] <= limit
                    and not offered[window_start(clock.now) - WINDOW]
                ):
                    refused_under_limit = True
        for i, limiter in enumerate(limiters):
            if step % every[i] == phase[i] % every[i]:
                limiter.sync()
    slowest = max(every)
    for count in admitted.values():
        assert count <= min(limit + most * 2 * slowest, 2 * limit)
    assert not refused_under_limit


def test_a_process_sees_what_another_admitted_after_both_sync(
    db: Database, second_db: Database
) -> None:
    clock = FakeClock(T0 + 1.0)
    first, second = (SharedLimiter(d, clock=clock) for d in (db, second_db))
    bucket = _bucket()
    assert all(first.check([Check(bucket, 10)]).allowed for _ in range(7))
    second.check([Check(bucket, 10)])  # one of its own, so that it reads the bucket back
    first.sync()
    second.sync()
    allowed = [second.check([Check(bucket, 10)]).allowed for _ in range(5)]
    assert allowed == [True, True, False, False, False]


def test_exact_counts_hold_across_processes_and_threads(db: Database, second_db: Database) -> None:
    limiters = [SharedLimiter(d) for d in (db, second_db)]
    bucket, limit = _bucket(), 17
    verdicts: list[bool] = []

    def knock(limiter: SharedLimiter) -> None:
        for _ in range(8):
            with limiter.db.unit_of_work() as session:
                verdicts.append(limiter.take_exact(session, bucket, limit).allowed)

    threads = [threading.Thread(target=knock, args=(limiters[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(verdicts) == limit and len(verdicts) == 48
    with db.unit_of_work(write=False) as session:
        found = repository.totals(session, [bucket], 0)
    # Refused knocks are not counted; the windows hold exactly what was admitted.
    assert sum(found.values()) == limit
    # Both processes now know, without asking the database, that the bucket is full.
    for limiter in limiters:
        assert not limiter.check([Check(bucket, limit, record=False)]).allowed


def test_refusals_say_when_to_come_back(db: Database) -> None:
    clock = FakeClock(T0 + 20.0)
    limiter = SharedLimiter(db, clock=clock)
    bucket = _bucket()
    with db.unit_of_work() as session:
        assert limiter.take_exact(session, bucket, 1).allowed
        refused = limiter.take_exact(session, bucket, 1)
    assert not refused.allowed and refused.retry_after == pytest.approx(WINDOW + 40.0)
    clock.now += refused.retry_after + 0.01
    with db.unit_of_work() as session:
        assert limiter.take_exact(session, bucket, 1).allowed


def test_old_windows_are_purged(db: Database) -> None:
    clock = FakeClock(T0 + 1.0)
    limiter = SharedLimiter(db, clock=clock)
    bucket = _bucket()
    limiter.check([Check(bucket, 5)])
    limiter.sync()
    clock.now += 3 * WINDOW
    limiter.check([Check(bucket, 5)])
    limiter.sync()
    with db.unit_of_work(write=False) as session:
        assert set(repository.totals(session, [bucket], 0)) == {(bucket, window_start(clock.now))}


def test_the_thread_sends_counts_and_stops(db: Database, second_db: Database) -> None:
    bucket = _bucket()
    limiter = SharedLimiter(db, sync_seconds=0.05)
    # Other limiters may be running in this process (the suite's live server has one).
    before = _limiter_threads()
    limiter.start()
    try:
        assert limiter.check([Check(bucket, 100)]).allowed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with second_db.unit_of_work(write=False) as session:
                if repository.totals(session, [bucket], 0):
                    break
            time.sleep(0.02)
    finally:
        limiter.stop()
    with second_db.unit_of_work(write=False) as session:
        assert sum(repository.totals(session, [bucket], 0).values()) == 1
    assert _limiter_threads() <= before


def _limiter_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "steelyard-ratelimit"}
