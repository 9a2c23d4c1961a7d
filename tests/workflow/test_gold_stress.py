"""Live and quality leases under concurrency, on SQLite and PostgreSQL: workers with two threads
each (the same worker's ``next`` calls race) work a project with gold and qualification,
submitting, releasing, skipping, heartbeating and abandoning leases while a monitor checks, in
one statement, that no worker ever holds two active leases across live and quality items. At
the end: no worker answered a quality item twice in one attempt, and nobody labeled a live task
of the project before passing its qualification."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, literal, select, union_all

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.db.engine import Database
from steelyard.errors import InvalidState, NotFound
from steelyard.projects import service as projects
from steelyard.tasks import create, gold
from steelyard.tasks.models import Task
from steelyard.workflow import quality_answers as answers
from steelyard.workflow import quality_serving
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment, Label, QualityAnswer

WORKERS = 6
THREADS_PER_WORKER = 2
LIVE_TASKS = 60
LEASE = 30.0
SECONDS = 6.0


@dataclass
class Tally:
    violations: list[str] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=lambda: {"live": 0, "quality": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)


def _setup(db: Database) -> tuple[str, list[Actor]]:
    now = FrozenClock().now()
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"goldstress-{uuid.uuid4().hex[:10]}").org
        customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        params = {
            "pipeline": "consensus_task",
            "consensus_attempts": 2,
            "gold_rate": 0.3,
            "qualification": {"pass_mark": 0.5, "tasks": 2, "max_attempts": 3},
        }
        projects.create_project(
            s, customer, {"name": "p", "type": "categorization", "params": params}, now
        )
        workers = [
            Actor(
                org_id=org.id,
                is_test=False,
                kind="user",
                role="annotator",
                user_id=accounts.create_user(
                    s,
                    org_id=org.id,
                    email=f"g{i}-{org.id}@x.io",
                    password_hash=None,
                    role="annotator",
                ).id,
            )
            for i in range(WORKERS)
        ]
        for i in range(LIVE_TASKS):
            create.create_task(
                s,
                customer,
                "categorization",
                {
                    "project": "p",
                    "attachment": f"t{i}",
                    "attachment_type": "text",
                    "categories": ["a", "b"],
                },
                now,
            )
    for kind, n in (("training", 3), ("evaluation", 8)):
        for i in range(n):
            body = {
                "project": "p",
                "attachment": f"{kind} {i}",
                "attachment_type": "text",
                "categories": ["a", "b"],
                "expected_response": {"category": "a"},
            }
            new = gold.read_quality_task(kind, "categorization", body)
            with db.unit_of_work(write=False) as s:
                defaults = projects.project_defaults(s, customer, name="p")
            checked = gold.check_quality_task(new, defaults)
            with db.unit_of_work() as s:
                gold.insert_quality_task(s, customer, new, checked, now)
    return org.id, workers


def _submit(db: Database, me: Actor, assignment_id: str, body: Any, now: Any) -> None:
    """As the edge does: a live assignment, else a quality lease."""
    with db.unit_of_work(write=False) as s:
        try:
            target = workflow.submit_target(s, me, assignment_id, body, now)
        except NotFound:
            q = answers.check_submission(
                answers.submit_target(s, me, assignment_id, body, now), body
            )
            target = None
    if target is None:
        with db.unit_of_work() as s:
            answers.submit(s, me, q, now)
        return
    checked = workflow.check_submission(target, body)
    with db.unit_of_work() as s:
        workflow.submit(s, me, checked, now)


def _give_back(db: Database, me: Actor, assignment_id: str, *, skip: bool, now: Any) -> None:
    with db.unit_of_work() as s:
        try:
            workflow.give_back(s, me, assignment_id, skip=skip, now=now)
        except NotFound:
            answers.give_back(s, me, assignment_id, skip=skip, now=now)


def _work(
    db: Database, clock: FrozenClock, me: Actor, tally: Tally, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        with db.unit_of_work() as s:
            lease = quality_serving.next_item(
                s, me, project_name=None, now=clock.now(), lease_seconds=LEASE
            )
            if lease is None:
                got = None
            elif isinstance(lease, quality_serving.QualityLease):
                got = (lease.answer.id, "quality")
            else:
                got = (lease.assignment.id, "live")
        if got is None:
            time.sleep(0.02)
            continue
        assignment_id, kind = got
        with tally.lock:
            tally.served[kind] += 1
        roll = rng.random()
        try:
            if roll < 0.05:
                _give_back(db, me, assignment_id, skip=True, now=clock.now())
            elif roll < 0.10:
                _give_back(db, me, assignment_id, skip=False, now=clock.now())
            elif roll < 0.13:
                time.sleep(0.01)  # walks away; the clock runs the lease out
            else:
                body = {"response": {"category": "a" if rng.random() < 0.8 else "b"}}
                _submit(db, me, assignment_id, body, clock.now())
        except (InvalidState, NotFound):
            # Another thread of the same worker ended this lease first, or it ran out.
            continue


def _two_leases(db: Database, org_id: str) -> int:
    """Workers with more than one active lease across both tables, in one statement."""
    live = select(Assignment.user_id.label("u"), literal(1).label("one")).where(
        Assignment.org_id == org_id, Assignment.status == "active"
    )
    quality = select(QualityAnswer.user_id.label("u"), literal(1).label("one")).where(
        QualityAnswer.org_id == org_id, QualityAnswer.status == "active"
    )
    both = union_all(live, quality).subquery()
    per_user = select(both.c.u).group_by(both.c.u).having(func.count() > 1).subquery()
    with db.unit_of_work(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(per_user)) or 0)


def test_one_lease_per_worker_across_live_and_quality(db: Database) -> None:
    org_id, workers = _setup(db)
    clock = FrozenClock()
    tally = Tally()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_work, args=(db, clock, me, tally, stop, i * 10 + j))
        for i, me in enumerate(workers)
        for j in range(THREADS_PER_WORKER)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        n = _two_leases(db, org_id)
        if n:
            tally.violations.append(f"{n} workers with two active leases")
        clock.advance(seconds=LEASE / 10)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not tally.violations, tally.violations[:5]
    assert tally.served["quality"] > 0 and tally.served["live"] > 0
    with db.unit_of_work(write=False) as s:
        twice = s.scalar(
            select(func.count()).select_from(
                select(QualityAnswer.quality_task_id, QualityAnswer.user_id, QualityAnswer.attempt)
                .where(QualityAnswer.org_id == org_id, QualityAnswer.status == "submitted")
                .group_by(
                    QualityAnswer.quality_task_id, QualityAnswer.user_id, QualityAnswer.attempt
                )
                .having(func.count() > 1)
                .subquery()
            )
        )
        assert twice == 0
        # Live work only after passing: each worker's first live label comes after their
        # qualification's last training answer of the passing attempt.
        for me in workers:
            first_label = s.scalar(
                select(func.min(Label.created_at))
                .join(Task, Task.seq == Label.task_seq)
                .where(Label.user_id == me.user_id, Task.org_id == org_id)
            )
            trained = s.execute(
                select(QualityAnswer.submitted_at, QualityAnswer.score).where(
                    QualityAnswer.user_id == me.user_id,
                    QualityAnswer.kind == "training",
                    QualityAnswer.status == "submitted",
                )
            ).all()
            if first_label is not None:
                assert len(trained) >= 2
                assert all(at is not None and at <= first_label for at, _ in trained)
