"""Property test of the lease invariants, driven by hypothesis over random schedules.

Workers ask for tasks, submit, and let leases run out while the clock moves. Whatever the
order: no task is leased to two workers at once, every submitted label is stored exactly once,
and a completed task has exactly one label (one label completes a task for now).
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import func, select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.errors import SteelyardError
from steelyard.projects import service as projects
from steelyard.tasks import create as tasks
from steelyard.tasks.models import Task
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment, Label

LEASE = 60
N_WORKERS = 4
N_TASKS = 5
_DB: Database | None = None


def _database() -> Database:
    """One migrated database for every example (each example makes its own organization)."""
    global _DB
    if _DB is None:
        _DB = Database(f"sqlite:///{Path(tempfile.mkdtemp()) / 'leases.db'}")
        upgrade(_DB.engine)
    return _DB


class Leases(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.db = _database()
        self.clock = FrozenClock()
        with self.db.unit_of_work() as s:
            org = accounts.create_organization(s, f"p-{uuid.uuid4().hex[:10]}").org
            self.customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
            projects.create_project(
                s, self.customer, {"name": "p", "type": "categorization"}, self.clock.now()
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
                    },
                    self.clock.now(),
                )
        self.held: dict[int, tuple[str, int, datetime]] = {}
        self.submitted = 0

    @rule(w=st.integers(0, N_WORKERS - 1))
    def ask(self, w: int) -> None:
        with self.db.unit_of_work() as s:
            lease = workflow.next_assignment(
                s, self.workers[w], project_name="p", now=self.clock.now(), lease_seconds=LEASE
            )
            if lease is None:
                return
            now = self.clock.now()
            for other, (_, seq, expires) in self.held.items():
                if other != w and seq == lease.task.seq:
                    assert expires <= now, "a live lease was handed to a second worker"
            self.held[w] = (lease.assignment.id, lease.task.seq, lease.assignment.expires_at)

    @rule(w=st.integers(0, N_WORKERS - 1))
    def submit(self, w: int) -> None:
        if w not in self.held:
            return
        assignment, _, expires = self.held.pop(w)
        body, now = {"response": {"category": "a"}}, self.clock.now()
        try:
            with self.db.unit_of_work(write=False) as s:
                target = workflow.submit_target(s, self.workers[w], assignment, body, now)
            checked = workflow.check_submission(target, body)
            with self.db.unit_of_work() as s:
                workflow.submit(s, self.workers[w], checked, now)
            self.submitted += 1
        except SteelyardError:
            # Refused (and nothing stored) only when the lease had run out.
            assert expires <= self.clock.now(), "a live lease could not submit"

    @rule(seconds=st.sampled_from([1, 30, LEASE + 1]))
    def wait(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def no_task_leased_twice(self) -> None:
        now = self.clock.now()
        with self.db.unit_of_work(write=False) as s:
            live = s.execute(
                select(Assignment.task_seq, func.count())
                .join(Task, Task.seq == Assignment.task_seq)
                .where(
                    Task.org_id == self.customer.org_id,
                    Assignment.status == "active",
                    Assignment.expires_at > now,
                )
                .group_by(Assignment.task_seq)
            ).all()
            assert all(n == 1 for _, n in live), live

    @invariant()
    def every_label_stored_once(self) -> None:
        with self.db.unit_of_work(write=False) as s:
            labels = s.scalar(
                select(func.count()).select_from(Label).where(Label.org_id == self.customer.org_id)
            )
            completed = s.scalar(
                select(func.count())
                .select_from(Task)
                .where(Task.org_id == self.customer.org_id, Task.status == "completed")
            )
        assert labels == self.submitted == completed


Leases.TestCase.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
TestLeases = Leases.TestCase


def test_expired_lease_moves_on() -> None:
    """A lease that ran out goes to the next worker; the first worker's submit is refused."""
    machine = Leases()
    machine.ask(0)
    first = machine.held[0][0]
    machine.clock.advance(LEASE + 1)
    machine.ask(1)
    assert machine.held[1][0] != first
    machine.submit(0)
    assert machine.submitted == 0
    machine.submit(1)
    assert machine.submitted == 1
