"""The job runner: claiming, retries with backoff, leases, concurrency, and its loops."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.jobs.runner import (
    GiveUp,
    JobContext,
    JobRunner,
    RetryLater,
    register_handler,
    retry_delay,
    settle,
)

KIND = "test_echo"


class Recorder:
    """A handler that remembers what it ran and fails the way it is told to."""

    def __init__(self, fail: type[Exception] | None = None, delay: float = 0.0) -> None:
        self.fail = fail
        self.delay = delay
        self.runs: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.ran = threading.Event()

    def __call__(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs.append((ctx.job.id, ctx.job.attempt))
        if self.delay:
            time.sleep(self.delay)
        self.ran.set()
        if self.fail is not None:
            raise self.fail("receiver said no")


def enqueue(db: Database, clock: FrozenClock, *, n: int = 1, max_attempts: int = 20) -> list[int]:
    with db.unit_of_work() as session:
        jobs = [
            outbox.enqueue(
                session, KIND, {"i": i}, org_id=None, now=clock.now(), max_attempts=max_attempts
            )
            for i in range(n)
        ]
        session.flush()
        return [job.id for job in jobs]


def job(db: Database, job_id: int) -> Job:
    with db.unit_of_work(write=False) as session:
        row = session.get(Job, job_id)
        assert row is not None
        session.expunge(row)  # keep its loaded values past the read transaction's rollback
        return row


def runner_for(
    db: Database, settings: Settings, clock: FrozenClock, handler: Recorder
) -> JobRunner:
    return JobRunner(db, settings, clock=clock, handlers={KIND: handler})


def test_runs_a_due_job_once_and_marks_it_done(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder()
    runner = runner_for(fresh_db, job_settings, clock, handler)
    [job_id] = enqueue(fresh_db, clock)
    assert runner.run_once() == 1
    assert runner.run_once() == 0
    assert handler.runs == [(job_id, 1)]
    row = job(fresh_db, job_id)
    assert (row.status, row.attempts, row.locked_until, row.last_error) == ("done", 1, None, None)


def test_a_job_whose_transaction_rolled_back_never_runs(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder()
    runner = runner_for(fresh_db, job_settings, clock, handler)
    with pytest.raises(RuntimeError), fresh_db.unit_of_work() as session:
        outbox.enqueue(session, KIND, {}, org_id=None, now=clock.now())
        session.flush()
        raise RuntimeError("the change failed")
    assert runner.run_once() == 0
    assert handler.runs == []
    with fresh_db.unit_of_work(write=False) as session:
        assert session.scalars(select(Job)).all() == []


def test_a_job_not_yet_due_waits(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder()
    runner = runner_for(fresh_db, job_settings, clock, handler)
    with fresh_db.unit_of_work() as session:
        later = outbox.enqueue(session, KIND, {}, org_id=None, now=clock.now())
        later.run_at = clock.now() + timedelta(seconds=30)
    assert runner.run_once() == 0
    clock.advance(30)
    assert runner.run_once() == 1


def test_an_idle_poll_takes_no_write_transaction(
    fresh_db: Database,
    job_settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite a write transaction takes the write lock from the requests; polling an empty
    (or not yet due) queue twice a second must not."""
    handler = Recorder()
    runner = runner_for(fresh_db, job_settings, clock, handler)
    with fresh_db.unit_of_work() as session:
        later = outbox.enqueue(session, KIND, {}, org_id=None, now=clock.now())
        later.run_at = clock.now() + timedelta(seconds=30)
    writes = []
    unit_of_work = fresh_db.unit_of_work

    def spy(*, write: bool = True) -> Any:
        writes.append(write)
        return unit_of_work(write=write)

    monkeypatch.setattr(fresh_db, "unit_of_work", spy)
    assert runner.run_once() == 0
    assert True not in writes
    clock.advance(30)
    assert runner.run_once() == 1
    assert True in writes


def test_failures_retry_with_exponential_backoff_then_fail(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder(fail=RetryLater)
    runner = runner_for(fresh_db, job_settings, clock, handler)
    [job_id] = enqueue(fresh_db, clock, max_attempts=4)
    for attempt, wait in ((1, 60), (2, 120), (3, 240)):
        assert runner.run_once() == 1
        row = job(fresh_db, job_id)
        assert (row.status, row.attempts) == ("queued", attempt)
        assert row.run_at == clock.now() + timedelta(seconds=wait)
        assert row.last_error == "receiver said no"
        clock.advance(wait - 1)
        assert runner.run_once() == 0, "ran before its backoff elapsed"
        clock.advance(1)
    assert runner.run_once() == 1
    row = job(fresh_db, job_id)
    assert (row.status, row.attempts) == ("failed", 4)
    clock.advance(10**6)
    assert runner.run_once() == 0
    assert [a for _, a in handler.runs] == [1, 2, 3, 4]


def test_unexpected_exceptions_retry_and_give_up_fails_at_once(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    crashing = Recorder(fail=ValueError)
    runner = runner_for(fresh_db, job_settings, clock, crashing)
    [job_id] = enqueue(fresh_db, clock)
    runner.run_once()
    row = job(fresh_db, job_id)
    assert row.status == "queued" and row.last_error == "ValueError: receiver said no"

    hopeless = Recorder(fail=GiveUp)
    runner = runner_for(fresh_db, job_settings, clock, hopeless)
    clock.advance(60)
    runner.run_once()
    row = job(fresh_db, job_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "receiver said no")


def test_unknown_kinds_are_retried_not_dropped(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    runner = JobRunner(fresh_db, job_settings, clock=clock)
    with fresh_db.unit_of_work() as session:
        job_id = outbox.enqueue(session, "from_the_future", {}, org_id=None, now=clock.now())
        session.flush()
        job_id_value = job_id.id
    runner.run_once()
    row = job(fresh_db, job_id_value)
    assert row.status == "queued"
    assert "no handler for job kind 'from_the_future'" in (row.last_error or "")


def test_process_wide_registry(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder()
    register_handler("test_registered", handler)
    runner = JobRunner(fresh_db, job_settings, clock=clock)
    with fresh_db.unit_of_work() as session:
        outbox.enqueue(session, "test_registered", {}, org_id=None, now=clock.now())
    assert runner.run_once() == 1
    assert len(handler.runs) == 1


def test_retry_delays_double_and_cap_so_twenty_attempts_span_about_a_day() -> None:
    settings = Settings(callback_retry_base_seconds=60)
    assert [retry_delay(settings, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(settings, 19) == settings.callback_retry_max_delay_seconds
    assert retry_delay(settings, 10_000) == settings.callback_retry_max_delay_seconds
    total_hours = sum(retry_delay(settings, n) for n in range(1, 20)) / 3600
    assert 20 < total_hours < 28


def test_a_crashed_runners_job_is_reclaimed_after_its_lease(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder()
    runner = runner_for(fresh_db, job_settings, clock, handler)
    [job_id] = enqueue(fresh_db, clock)
    [crashed] = runner.claim(10)  # claimed, then the process "dies"
    assert runner.run_once() == 0, "a leased job must not be run by anyone else"
    clock.advance(job_settings.job_lease_seconds + 1)
    assert runner.run_once() == 1
    assert handler.runs == [(job_id, 2)]
    # The dead runner's late report must not overwrite the new attempt's result.
    with fresh_db.unit_of_work() as session:
        assert not settle(session, crashed, "retry", "late", now=clock.now(), settings=job_settings)
    assert job(fresh_db, job_id).status == "done"


def test_two_runners_never_run_the_same_job(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder(delay=0.002)
    ids = enqueue(fresh_db, clock, n=60)
    runners = [runner_for(fresh_db, job_settings, clock, handler) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def drain(runner: JobRunner) -> None:
        try:
            start.wait()
            while runner.run_once(limit=3):
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    ran = [job_id for job_id, _ in handler.runs]
    assert sorted(ran) == sorted(ids), "every job ran exactly once"
    with fresh_db.unit_of_work(write=False) as session:
        assert set(session.scalars(select(Job.status))) == {"done"}


def test_concurrent_execution_within_one_runner(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    settings = job_settings.model_copy(update={"job_concurrency": 4})
    in_flight, peak = 0, 0
    lock = threading.Lock()

    def slow(ctx: JobContext) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)  # a slow receiver
        with lock:
            in_flight -= 1

    runner = JobRunner(fresh_db, settings, clock=clock, handlers={KIND: slow})
    enqueue(fresh_db, clock, n=8)
    assert runner.run_once() == 8
    runner.stop()
    assert 1 < peak <= 4, "jobs overlap, up to job_concurrency at once"
    with fresh_db.unit_of_work(write=False) as session:
        assert set(session.scalars(select(Job.status))) == {"done"}


def test_background_thread_wakes_on_commit_and_stops_promptly(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    # A long poll interval: the job can only run quickly if the commit wakes the runner.
    settings = job_settings.model_copy(update={"job_poll_seconds": 30.0})
    handler = Recorder()
    runner = runner_for(fresh_db, settings, clock, handler)
    runner.start()
    try:
        time.sleep(0.1)  # let the first (empty) round finish and the thread sleep
        enqueue(fresh_db, clock)
        assert handler.ran.wait(5), "the runner did not wake up for the new job"
    finally:
        started = time.monotonic()
        runner.stop()
        assert time.monotonic() - started < 2


def test_stopping_hands_back_claimed_jobs_it_has_not_started(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    gate, started = threading.Event(), threading.Event()

    def blocking(ctx: JobContext) -> None:
        started.set()
        gate.wait(5)

    runner = JobRunner(fresh_db, job_settings, clock=clock, handlers={KIND: blocking})
    first, *rest = enqueue(fresh_db, clock, n=3)
    runner.start()
    assert started.wait(5)
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    time.sleep(0.1)  # stop() has asked; the job in hand is still running
    gate.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert (job(fresh_db, first).status, job(fresh_db, first).attempts) == ("done", 1)
    for job_id in rest:
        row = job(fresh_db, job_id)
        assert (row.status, row.attempts, row.locked_until) == ("queued", 0, None)


def test_run_forever_stops_on_sigterm(
    fresh_db: Database, job_settings: Settings, clock: FrozenClock
) -> None:
    handler = Recorder()
    runner = runner_for(fresh_db, job_settings, clock, handler)
    enqueue(fresh_db, clock)
    previous = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    runner.run_forever()
    assert time.monotonic() - started < 5
    assert len(handler.runs) == 1
    assert signal.getsignal(signal.SIGTERM) == previous, "the old handler is restored"
