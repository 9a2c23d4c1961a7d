"""32 workers in 32 threads drain tasks that need 3 labels each, on SQLite and PostgreSQL.

Workers skip, release, heartbeat and abandon leases; a clock thread moves a shared fake clock
so that leases run out at random; a reaper reclaims them; a monitor checks, while all that
runs, that no task has more labels or live leases than it needs and no worker holds two
leases. At the end: every submit that was answered with success is a stored label, no worker
labeled a task twice, and every task completed exactly once, with exactly one callback job.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

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
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment, Label
from tests.workflow import stress

WORKERS = 32
#: A port nothing listens on: the callback jobs are counted here, and a job runner of the
#: session's live server that picks one up fails at connect, at once (no DNS, no waiting).
CALLBACK = "http://127.0.0.1:9/cb"
K = 3
LEASE = 60.0
#: The issue asks for 2,000 tasks; on this shared 2-core machine that takes about 5 minutes on
#: SQLite, so the suite drains fewer by default and ``STEELYARD_DRAIN_TASKS=2000`` runs it whole.
TASKS = int(os.environ.get("STEELYARD_DRAIN_TASKS", "300"))


@dataclass
class Tally:
    submitted: Counter[int] = field(default_factory=Counter)
    by_worker: dict[str, set[int]] = field(default_factory=dict)
    completed: Counter[int] = field(default_factory=Counter)
    skipped: int = 0
    released: int = 0
    abandoned: int = 0
    refused: int = 0
    heartbeats: int = 0
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _setup(db: Database, n_tasks: int) -> tuple[Actor, list[Actor]]:
    clock_now = FrozenClock().now()
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"drain-{uuid.uuid4().hex[:10]}").org
        customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        projects.create_project(
            s,
            customer,
            {
                "name": "p",
                "type": "categorization",
                "params": {"pipeline": "consensus_task", "consensus_attempts": K},
            },
            clock_now,
        )
        workers = []
        for i in range(WORKERS):
            user = accounts.create_user(
                s, org_id=org.id, email=f"w{i}-{org.id}@x.io", password_hash=None, role="annotator"
            )
            workers.append(
                Actor(org_id=org.id, is_test=False, kind="user", role="annotator", user_id=user.id)
            )
    for start in range(0, n_tasks, 500):
        with db.unit_of_work() as s:
            for i in range(start, min(n_tasks, start + 500)):
                create.create_task(
                    s,
                    customer,
                    "categorization",
                    {
                        "project": "p",
                        "attachment": f"t{i}",
                        "attachment_type": "text",
                        "categories": ["a", "b"],
                        "callback_url": CALLBACK,
                    },
                    clock_now,
                )
    return customer, workers


def _work(
    db: Database,
    clock: FrozenClock,
    me: Actor,
    tally: Tally,
    n_tasks: int,
    stop: threading.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    mine = tally.by_worker.setdefault(me.user_id or "", set())
    while not stop.is_set():
        with tally.lock:
            if len(tally.completed) >= n_tasks:
                return
        with db.unit_of_work() as s:
            lease = workflow.next_assignment(
                s, me, project_name="p", now=clock.now(), lease_seconds=LEASE
            )
            got = None if lease is None else (lease.assignment.id, lease.task.seq)
        if got is None:
            # Nothing free now (the rest is leased to others): ask again a little later.
            time.sleep(0.03)
            continue
        assignment_id, seq = got
        roll = rng.random()
        try:
            if roll < 0.04:
                with db.unit_of_work() as s:
                    workflow.give_back(s, me, assignment_id, skip=True, now=clock.now())
                with tally.lock:
                    tally.skipped += 1
                continue
            if roll < 0.07:
                with db.unit_of_work() as s:
                    workflow.give_back(s, me, assignment_id, skip=False, now=clock.now())
                with tally.lock:
                    tally.released += 1
                continue
            if roll < 0.10:
                # Walks away: the lease runs out (the clock thread moves time) and is reclaimed.
                with tally.lock:
                    tally.abandoned += 1
                time.sleep(0.02)
                continue
            if roll < 0.40:
                with db.unit_of_work() as s:
                    workflow.heartbeat(s, me, assignment_id, clock.now(), LEASE)
                with tally.lock:
                    tally.heartbeats += 1
            body = {"response": {"category": rng.choice(["a", "b"])}}
            with db.unit_of_work(write=False) as s:
                target = workflow.submit_target(s, me, assignment_id, body, clock.now())
            checked = workflow.check_submission(target, body)
            with db.unit_of_work() as s:
                stored = workflow.submit(s, me, checked, clock.now())
                done_seq = stored.task_seq if stored.status == "completed" else None
        except (InvalidState, NotFound):
            # The lease ran out and was reclaimed before this call: nothing was stored.
            with tally.lock:
                tally.refused += 1
            continue
        with tally.lock:
            if seq in mine:
                tally.violations.append(f"worker {me.user_id} labeled task {seq} twice")
            mine.add(seq)
            tally.submitted[seq] += 1
            if done_seq is not None:
                tally.completed[done_seq] += 1


def _monitor(db: Database, org_id: str, clock: FrozenClock, tally: Tally) -> list[str]:
    """What must hold at any moment, read in one snapshot (SQLite) or one statement each."""
    now = clock.now()
    found = []
    with db.unit_of_work(write=False) as s:
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
        live = (
            select(Assignment.task_seq, func.count().label("n"))
            .where(
                Assignment.org_id == org_id,
                Assignment.status == "active",
                Assignment.expires_at > now,
            )
            .group_by(Assignment.task_seq)
            .subquery()
        )
        too_many = s.scalar(
            select(func.count())
            .select_from(Task)
            .join(live, live.c.task_seq == Task.seq)
            .where(live.c.n + Task.labels_done > Task.labels_needed)
        )
        if too_many:
            found.append(f"{too_many} tasks with more live leases than they need")
        doubled = s.scalar(
            select(func.count()).select_from(
                select(Assignment.user_id)
                .where(Assignment.org_id == org_id, Assignment.status == "active")
                .group_by(Assignment.user_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
        if doubled:
            found.append(f"{doubled} workers holding two leases")
    return found


@pytest.mark.parametrize("seed", [8])
def test_32_workers_drain_k3_tasks(db: Database, backend: str, seed: int) -> None:
    n_tasks = TASKS
    customer, workers = _setup(db, n_tasks)
    clock = FrozenClock()
    tally = Tally()
    stop = threading.Event()
    rng = random.Random(seed)

    def clock_and_reaper() -> None:
        while not stop.is_set():
            time.sleep(0.01)
            # Mostly small steps; now and then past every lease taken before.
            clock.advance(LEASE + 1 if rng.random() < 0.05 else rng.random())
            if rng.random() < 0.2:
                with db.unit_of_work() as s:
                    workflow.reclaim_expired(s, clock.now())

    def monitor() -> None:
        while not stop.is_set():
            problems = _monitor(db, customer.org_id, clock, tally)
            if problems:
                with tally.lock:
                    tally.violations.extend(problems)
            time.sleep(0.02)

    helpers = [threading.Thread(target=clock_and_reaper), threading.Thread(target=monitor)]
    threads = [
        threading.Thread(target=_work, args=(db, clock, w, tally, n_tasks, stop, seed * 1000 + i))
        for i, w in enumerate(workers)
    ]
    elapsed = stress.run_to_the_end(helpers, threads, stop)
    assert not tally.violations, tally.violations[:10]
    assert len(tally.completed) == n_tasks, (len(tally.completed), n_tasks, elapsed)
    assert set(tally.completed.values()) == {1}

    org_id = customer.org_id
    with db.unit_of_work(write=False) as s:
        statuses = Counter(s.scalars(select(Task.status).where(Task.org_id == org_id)))
        assert statuses == {"completed": n_tasks}
        labels = Counter(s.scalars(select(Label.task_seq).where(Label.org_id == org_id)))
        # Every label answered with success is stored, and nothing else is.
        assert labels == tally.submitted
        assert set(labels.values()) == {K}
        per_worker = s.execute(
            select(Label.task_seq, Label.user_id, func.count())
            .where(Label.org_id == org_id)
            .group_by(Label.task_seq, Label.user_id)
            .having(func.count() > 1)
        ).all()
        assert per_worker == []
        counters = s.execute(
            select(Task.labels_done, Task.leases_open, Task.labels_needed, Task.confidence).where(
                Task.org_id == org_id
            )
        ).all()
        assert {(d, n) for d, _, n, _ in counters} == {(K, K)}
        assert all(0.0 <= c <= 1.0 for *_, c in counters)
        # Slots of leases still active on completed tasks cannot exist: a completed task had
        # exactly K labels and no open lease.
        assert {o for _, o, _, _ in counters} == {0}
        callbacks = Counter(
            str(p["task_id"])
            for p in s.scalars(
                select(Job.payload).where(Job.org_id == org_id, Job.kind == outbox.TASK_CALLBACK)
            )
        )
        assert len(callbacks) == n_tasks and set(callbacks.values()) == {1}
    with db.unit_of_work() as s:
        # Nobody is listening: the shared live server's runner need not try them.
        s.execute(delete(Job).where(Job.org_id == org_id))
        active = s.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(Assignment.org_id == org_id, Assignment.status == "active")
        )
    # A task completes only with no lease open on it, so nothing can still be active.
    assert active == 0
    # The run exercised what it claims to.
    assert tally.skipped and tally.released and tally.abandoned and tally.heartbeats
    print(
        f"\n{backend}: {n_tasks} tasks x {K} labels by {WORKERS} workers in {elapsed:.1f} s; "
        f"skipped {tally.skipped}, released {tally.released}, abandoned {tally.abandoned}, "
        f"refused {tally.refused}, heartbeats {tally.heartbeats}"
    )
