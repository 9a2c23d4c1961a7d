"""The job runner reclaims expired leases, so their slots free up without a worker asking."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.jobs.runner import JobRunner
from steelyard.projects import service as projects
from steelyard.tasks import create
from steelyard.tasks.models import Task
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment


def test_runner_reclaims_expired_leases(db: Database, settings: Settings) -> None:
    clock = FrozenClock()
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"reap-{uuid.uuid4().hex[:10]}").org
        customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        projects.create_project(s, customer, {"name": "p", "type": "categorization"}, clock.now())
        user = accounts.create_user(
            s, org_id=org.id, email=f"w-{org.id}@x.io", password_hash=None, role="annotator"
        )
        worker = Actor(org_id=org.id, is_test=False, kind="user", role="annotator", user_id=user.id)
        body = {"project": "p", "attachment": "x", "attachment_type": "text", "categories": ["a"]}
        seq = create.create_task(s, customer, "categorization", body, clock.now()).task.seq
    with db.unit_of_work() as s:
        lease = workflow.next_assignment(
            s, worker, project_name="p", now=clock.now(), lease_seconds=60
        )
        assert lease is not None
        assignment_id = lease.assignment.id
    runner = JobRunner(db, settings, clock=clock)
    runner.reap_leases(force=True)
    with db.unit_of_work(write=False) as s:  # still live: left alone
        assert s.scalar(select(Assignment.status).where(Assignment.id == assignment_id)) == "active"
    clock.advance(61)
    assert runner.reap_leases(force=True) >= 1
    with db.unit_of_work(write=False) as s:
        status = s.scalar(select(Assignment.status).where(Assignment.id == assignment_id))
        leased = s.scalar(select(Task.leases_open).where(Task.seq == seq))
    assert (status, leased) == ("expired", 0)
    # Not again within reap_seconds, unless forced.
    clock.advance(120)
    assert runner.reap_leases() == 0
