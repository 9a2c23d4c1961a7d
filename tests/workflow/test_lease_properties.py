"""Property test of the lease invariants, driven by hypothesis over random schedules, on SQLite
and PostgreSQL.

Workers ask for tasks that need two labels each, submit, heartbeat, release, skip and let
leases run out while the clock moves; the reaper runs now and then. Whatever the order: no task
has more labels plus live leases than it needs and its counters match its rows, no worker holds
two leases or labels a task twice or is offered a task they skipped, every submitted label is
stored exactly once, and a completed task has exactly the labels it needed and one callback.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.db.engine import Database
from steelyard.errors import SteelyardError
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.projects import service as projects
from steelyard.tasks import create as tasks
from steelyard.tasks.models import Task
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment, Label

LEASE = 60
N_WORKERS = 4
N_TASKS = 4
K = 2
#: Nothing listens there: a live server's job runner that picks a callback up fails at once.
CALLBACK = "http://127.0.0.1:9/cb"
#: Organizations made, whose callback jobs are dropped after each test.
ORGS: list[str] = []


class Leases(RuleBasedStateMachine):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        # From the real now: the session's live server (started by the API tests) reaps
        # expired leases by the real clock, and took leases a clock in the past had given out
        # ("a worker with a live lease was given another", now and then on PostgreSQL).
        self.clock = FrozenClock(datetime.now(UTC))
        with self.db.unit_of_work() as s:
            org = accounts.create_organization(s, f"p-{uuid.uuid4().hex[:10]}").org
            self.org_id = org.id
            ORGS.append(org.id)
            self.customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
            projects.create_project(
                s,
                self.customer,
                {
                    "name": "p",
                    "type": "categorization",
                    "params": {"pipeline": "consensus_task", "consensus_attempts": K},
                },
                self.clock.now(),
            )
            self.workers = []
            for i in range(N_WORKERS):
                user = accounts.create_user(
                    s,
                    org_id=org.id,
                    email=f"w{i}-{org.id}@x.io",
                    password_hash=None,
                    role="annotator",
                )
                self.workers.append(
                    Actor(
                        org_id=org.id, is_test=False, kind="user", role="annotator", user_id=user.id
                    )
                )
            for i in range(N_TASKS):
                tasks.create_task(
                    s,
                    self.customer,
                    "categorization",
                    {
                        "project": "p",
                        "attachment": f"t{i}",
                        "attachment_type": "text",
                        "categories": ["a", "b"],
                        "callback_url": CALLBACK,
                    },
                    self.clock.now(),
                )
        #: worker → (assignment, task seq, expires at) of the lease last handed out
        self.held: dict[int, tuple[str, int, datetime]] = {}
        self.skipped: set[tuple[int, int]] = set()
        self.labeled: set[tuple[int, int]] = set()
        self.submitted = 0

    @rule(w=st.integers(0, N_WORKERS - 1))
    def ask(self, w: int) -> None:
        now = self.clock.now()
        with self.db.unit_of_work() as s:
            lease = workflow.next_assignment(
                s, self.workers[w], project_name="p", now=now, lease_seconds=LEASE
            )
            if lease is None:
                return
            got = (lease.assignment.id, lease.task.seq, lease.assignment.expires_at)
        previous = self.held.get(w)
        if previous is not None and previous[2] > now:
            assert got[0] == previous[0], "a worker with a live lease was given another"
        assert (w, got[1]) not in self.skipped, "a skipped task was offered again"
        assert (w, got[1]) not in self.labeled, "a task was offered to a worker who labeled it"
        self.held[w] = got

    @rule(w=st.integers(0, N_WORKERS - 1), category=st.sampled_from(["a", "b"]))
    def submit(self, w: int, category: str) -> None:
        if w not in self.held:
            return
        assignment, seq, _ = self.held.pop(w)
        body, now = {"response": {"category": category}}, self.clock.now()
        try:
            with self.db.unit_of_work(write=False) as s:
                target = workflow.submit_target(s, self.workers[w], assignment, body, now)
            checked = workflow.check_submission(target, body)
            with self.db.unit_of_work() as s:
                workflow.submit(s, self.workers[w], checked, now)
        except SteelyardError:
            # Refused (and nothing stored) only once the lease was ended: reclaimed after it
            # ran out, or replaced when the worker asked again after it ran out.
            with self.db.unit_of_work(write=False) as s:
                status = s.scalar(select(Assignment.status).where(Assignment.id == assignment))
            assert status in ("expired", "released", "skipped", "submitted"), status
            return
        self.submitted += 1
        self.labeled.add((w, seq))

    @rule(w=st.integers(0, N_WORKERS - 1), skip=st.booleans())
    def give_back(self, w: int, skip: bool) -> None:
        if w not in self.held:
            return
        assignment, seq, _ = self.held.pop(w)
        try:
            with self.db.unit_of_work() as s:
                workflow.give_back(s, self.workers[w], assignment, skip=skip, now=self.clock.now())
        except SteelyardError:
            return
        if skip:
            self.skipped.add((w, seq))

    @rule(w=st.integers(0, N_WORKERS - 1))
    def heartbeat(self, w: int) -> None:
        if w not in self.held:
            return
        assignment, seq, _ = self.held[w]
        try:
            with self.db.unit_of_work() as s:
                a = workflow.heartbeat(s, self.workers[w], assignment, self.clock.now(), LEASE)
                self.held[w] = (assignment, seq, a.expires_at)
        except SteelyardError:
            self.held.pop(w)

    @rule(seconds=st.sampled_from([1, 30, LEASE + 1]))
    def wait(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def reap(self) -> None:
        with self.db.unit_of_work() as s:
            workflow.reclaim_expired(s, self.clock.now())

    @invariant()
    def counters_match_rows_and_stay_within_needs(self) -> None:
        now = self.clock.now()
        with self.db.unit_of_work(write=False) as s:
            rows = s.execute(
                select(
                    Task.seq,
                    Task.status,
                    Task.labels_needed,
                    Task.labels_done,
                    Task.leases_open,
                    Task.task_id,
                ).where(Task.org_id == self.org_id)
            ).all()
            active = Counter(
                s.scalars(
                    select(Assignment.task_seq).where(
                        Assignment.org_id == self.org_id, Assignment.status == "active"
                    )
                )
            )
            live = Counter(
                s.scalars(
                    select(Assignment.task_seq).where(
                        Assignment.org_id == self.org_id,
                        Assignment.status == "active",
                        Assignment.expires_at > now,
                    )
                )
            )
            labels = Counter(s.scalars(select(Label.task_seq).where(Label.org_id == self.org_id)))
            holders = Counter(
                s.scalars(
                    select(Assignment.user_id).where(
                        Assignment.org_id == self.org_id, Assignment.status == "active"
                    )
                )
            )
            pairs = s.execute(
                select(func.count())
                .select_from(Label)
                .where(Label.org_id == self.org_id)
                .group_by(Label.task_seq, Label.user_id)
                .having(func.count() > 1)
            ).all()
            callbacks = Counter(
                str(p["task_id"])
                for p in s.scalars(
                    select(Job.payload).where(
                        Job.org_id == self.org_id, Job.kind == outbox.TASK_CALLBACK
                    )
                )
            )
        assert not pairs, "a worker labeled a task twice"
        assert all(n == 1 for n in holders.values()), holders
        assert sum(labels.values()) == self.submitted
        for seq, status, needed, done, leased, task_id in rows:
            assert done == labels[seq] and leased == active[seq], (seq, done, leased)
            assert done + leased <= needed and done + live[seq] <= needed
            if status == "completed":
                assert done == needed == K and leased == 0
                assert callbacks[task_id] == 1
            else:
                assert callbacks[task_id] == 0


SETTINGS = settings(max_examples=25, stateful_step_count=40, deadline=None)


@pytest.fixture(autouse=True)
def _drop_callback_jobs(db: Database) -> Iterator[None]:
    yield
    with db.unit_of_work() as s:
        s.execute(delete(Job).where(Job.org_id.in_(ORGS)))
    ORGS.clear()


def test_lease_invariants(db: Database) -> None:
    run_state_machine_as_test(lambda: Leases(db), settings=SETTINGS)


def test_expired_lease_moves_on(db: Database) -> None:
    """A lease that ran out is reclaimed for the next worker; the first worker's submit is
    refused, and the task completes with the two labels it needs."""
    machine = Leases(db)
    machine.ask(0)
    first = machine.held[0]
    machine.ask(1)
    machine.clock.advance(LEASE + 1)
    machine.heartbeat(1)  # ran out but not reclaimed: it still holds its slot
    machine.reap()
    machine.ask(2)
    assert machine.held[2][1] == first[1], "the reclaimed slot went to the next worker"
    machine.submit(0, "a")
    assert machine.submitted == 0
    machine.submit(1, "a")
    machine.submit(2, "a")
    assert machine.submitted == 2
    machine.counters_match_rows_and_stay_within_needs()
    with db.unit_of_work(write=False) as s:
        status, confidence = s.execute(
            select(Task.status, Task.confidence).where(Task.seq == first[1])
        ).one()
    assert status == "completed" and confidence is not None and 0.5 < confidence <= 1.0
