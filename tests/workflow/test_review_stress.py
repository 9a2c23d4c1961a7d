"""Reviewers and labelers in threads drain a project that reviews every task, on SQLite and
PostgreSQL.

Twelve people, each both a labeler and a reviewer (role ``reviewer``), take turns at random:
label the next task (k = 2), or take the next review and accept, fix, reject (at most once per
task, so the rework always finds fresh workers), release it, heartbeat it, or walk away from it
(a clock thread moves a shared fake clock; a reaper reclaims labeling and review leases). A
monitor checks while it runs that no task has two open review rounds or more labels and leases
than it needs. At the end: every task completed exactly once, with exactly one completion
callback; its response is what its last review decided (the candidate accepted, or the fix,
with the candidate in ``prior_responses``); nobody reviewed a task they labeled; and every
rejected round's labels are superseded.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.db.engine import Database
from steelyard.errors import InvalidState, NotFound
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.projects import service as projects
from steelyard.tasks import create
from steelyard.tasks.models import Task
from steelyard.workflow import review
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Label, Review
from tests.workflow import stress

PEOPLE = 12
K = 2
LEASE = 60.0
CALLBACK = "http://127.0.0.1:9/cb"
TASKS = int(os.environ.get("STEELYARD_REVIEW_DRAIN_TASKS", "120"))


@dataclass
class Tally:
    completed: Counter[int] = field(default_factory=Counter)
    rejected: set[int] = field(default_factory=set)
    decisions: Counter[str] = field(default_factory=Counter)
    abandoned: int = 0
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _setup(db: Database, n_tasks: int) -> tuple[str, list[Actor]]:
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"rdrain-{uuid.uuid4().hex[:10]}").org
        customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        params = {"pipeline": "consensus_task", "consensus_attempts": K, "review": {"mode": "all"}}
        projects.create_project(
            s, customer, {"name": "p", "type": "categorization", "params": params}, now
        )
        people = []
        for i in range(PEOPLE):
            user = accounts.create_user(
                s, org_id=org.id, email=f"r{i}-{org.id}@x.io", password_hash=None, role="reviewer"
            )
            people.append(
                Actor(org_id=org.id, is_test=False, kind="user", role="reviewer", user_id=user.id)
            )
        for i in range(n_tasks):
            body = {
                "project": "p",
                "attachment": f"t{i}",
                "attachment_type": "text",
                "categories": ["a", "b", "c"],
                "callback_url": CALLBACK,
            }
            create.create_task(s, customer, "categorization", body, now)
    return org.id, people


def _label(db: Database, clock: FrozenClock, me: Actor, rng: random.Random) -> bool:
    with db.unit_of_work() as s:
        lease = workflow.next_assignment(
            s, me, project_name="p", now=clock.now(), lease_seconds=LEASE
        )
        assignment_id = None if lease is None else lease.assignment.id
    if assignment_id is None:
        return False
    body = {"response": {"category": rng.choice(["a", "b"])}}
    with db.unit_of_work(write=False) as s:
        target = workflow.submit_target(s, me, assignment_id, body, clock.now())
    checked = workflow.check_submission(target, body)
    with db.unit_of_work() as s:
        stored = workflow.submit(s, me, checked, clock.now())
    # Every task is reviewed: a label never completes one.
    assert stored.status == "pending"
    return True


def _review(db: Database, clock: FrozenClock, me: Actor, rng: random.Random, tally: Tally) -> bool:
    with db.unit_of_work() as s:
        lease = review.next_review(s, me, project_name="p", now=clock.now(), lease_seconds=LEASE)
        got = None if lease is None else (lease.review.id, lease.task.seq)
        if got is not None:
            mine = s.scalar(
                select(func.count()).where(Label.task_seq == got[1], Label.user_id == me.user_id)
            )
            if mine:
                with tally.lock:
                    tally.violations.append(f"{me.user_id} got the review of a task they labeled")
    if got is None:
        return False
    review_id, seq = got
    roll = rng.random()
    if roll < 0.08:
        with tally.lock:
            tally.abandoned += 1
        return True
    if roll < 0.16:
        with db.unit_of_work() as s:
            review.release(s, me, review_id)
        return True
    if roll < 0.4:
        with db.unit_of_work() as s:
            review.heartbeat(s, me, review_id, clock.now(), LEASE)
    with tally.lock:
        may_reject = seq not in tally.rejected
    with db.unit_of_work() as s:
        if may_reject and roll > 0.85:
            _, task = review.reject(s, me, review_id, "look again", clock.now())
            decision = "rejected"
        elif roll > 0.7:
            _, task = review.fix(s, me, review_id, {"category": "c"}, clock.now())
            decision = "fixed"
        else:
            _, task = review.accept(s, me, review_id, clock.now())
            decision = "accepted"
        status = task.status
    with tally.lock:
        tally.decisions[decision] += 1
        if decision == "rejected":
            tally.rejected.add(seq)
        if status == "completed":
            tally.completed[seq] += 1
    return True


def _person(
    db: Database,
    clock: FrozenClock,
    me: Actor,
    tally: Tally,
    n_tasks: int,
    stop: threading.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        with tally.lock:
            if len(tally.completed) >= n_tasks:
                return
        steps = [
            lambda: _label(db, clock, me, rng),
            lambda: _review(db, clock, me, rng, tally),
        ]
        rng.shuffle(steps)
        try:
            if not (steps[0]() or steps[1]()):
                time.sleep(0.02)
        except (InvalidState, NotFound):
            # A lease ran out and was reclaimed under us: nothing was written.
            continue
        except Exception as exc:  # any other failure is a finding
            with tally.lock:
                tally.violations.append(f"{type(exc).__name__}: {exc}")
            return


def _monitor(db: Database, org_id: str) -> list[str]:
    found = []
    with db.unit_of_work(write=False) as s:
        doubled = s.scalar(
            select(func.count()).select_from(
                select(Review.task_seq)
                .where(Review.org_id == org_id, Review.status.in_(review.OPEN))
                .group_by(Review.task_seq)
                .having(func.count() > 1)
                .subquery()
            )
        )
        if doubled:
            found.append(f"{doubled} tasks with two open review rounds")
        over = s.scalar(
            select(func.count())
            .select_from(Task)
            .where(
                Task.org_id == org_id,
                (Task.labels_done + Task.leases_open > Task.labels_needed) | (Task.leases_open < 0),
            )
        )
        if over:
            found.append(f"{over} tasks over their labels")
    return found


@pytest.mark.parametrize("seed", [5])
def test_people_label_and_review_every_task_exactly_once(
    db: Database, backend: str, seed: int
) -> None:
    org_id, people = _setup(db, TASKS)
    # From the real now, so that the session's live server's reaper (real clock) never takes
    # a lease this test's clock still considers live.
    clock = FrozenClock(datetime.now(UTC))
    tally = Tally()
    stop = threading.Event()
    rng = random.Random(seed)

    def clock_and_reaper() -> None:
        while not stop.is_set():
            time.sleep(0.01)
            clock.advance(LEASE + 1 if rng.random() < 0.05 else rng.random())
            if rng.random() < 0.2:
                with db.unit_of_work() as s:
                    workflow.reclaim_expired(s, clock.now())
                with db.unit_of_work() as s:
                    review.reclaim_expired(s, clock.now())

    def monitor() -> None:
        while not stop.is_set():
            problems = _monitor(db, org_id)
            if problems:
                with tally.lock:
                    tally.violations.extend(problems)
            time.sleep(0.03)

    helpers = [threading.Thread(target=clock_and_reaper), threading.Thread(target=monitor)]
    threads = [
        threading.Thread(target=_person, args=(db, clock, me, tally, TASKS, stop, seed * 1000 + i))
        for i, me in enumerate(people)
    ]
    elapsed = stress.run_to_the_end(helpers, threads, stop)
    assert not tally.violations, tally.violations[:10]
    assert len(tally.completed) == TASKS, (len(tally.completed), TASKS, elapsed)
    assert set(tally.completed.values()) == {1}

    with db.unit_of_work(write=False) as s:
        tasks = {t.seq: t for t in s.scalars(select(Task).where(Task.org_id == org_id)).all()}
        assert Counter(t.status for t in tasks.values()) == {"completed": TASKS}
        rounds = s.scalars(select(Review).where(Review.org_id == org_id)).all()
        labels = s.execute(
            select(Label.task_seq, Label.user_id, Label.superseded, Label.created_at).where(
                Label.org_id == org_id
            )
        ).all()
        callbacks = Counter(
            str(p["task_id"])
            for p in s.scalars(
                select(Job.payload).where(Job.org_id == org_id, Job.kind == outbox.TASK_CALLBACK)
            )
        )
    assert {r.status for r in rounds} <= set(review.DECISIONS)
    labelers: dict[int, set[str]] = {}
    for seq, user_id, _, _ in labels:
        labelers.setdefault(seq, set()).add(user_id)
    finals: dict[int, list[Review]] = {}
    for r in rounds:
        assert r.active_seconds is not None and r.active_seconds >= 0
        if r.status != "rejected":
            finals.setdefault(r.task_seq, []).append(r)
    for seq, task in tasks.items():
        # Every round but one was rejected (the fake clock may give two rounds one time, so
        # the one that completed the task is found by its decision, not by its time).
        (final,) = finals[seq]
        # Labels, superseded ones too, all came before the final decision: none is its
        # reviewer's. (One who rejected an earlier round may have labeled the rework.)
        assert final.reviewer_id not in labelers[seq], "a labeler reviewed their own task"
        if final.status == "accepted":
            assert task.response == final.candidate
            assert task.confidence == pytest.approx(final.confidence)
        else:
            assert task.response == final.response == {"category": "c"}
            assert task.prior_responses[-1] == final.candidate
        rejected = sum(1 for r in rounds if r.task_seq == seq and r.status == "rejected")
        superseded = sum(1 for s_, _, sup, _ in labels if s_ == seq and sup)
        assert superseded == K * rejected
        assert (task.labels_done, task.leases_open) == (K * (rejected + 1), 0)
    assert len(callbacks) == TASKS and set(callbacks.values()) == {1}
    # The run exercised what it claims to.
    assert tally.decisions["accepted"] and tally.decisions["fixed"]
    assert tally.decisions["rejected"] and tally.abandoned
    with db.unit_of_work() as s:
        s.execute(delete(Job).where(Job.org_id == org_id))
    print(
        f"\n{backend}: {TASKS} tasks, k={K}, reviewed by {PEOPLE} people in {elapsed:.1f} s; "
        f"{dict(tally.decisions)}, abandoned {tally.abandoned}"
    )
