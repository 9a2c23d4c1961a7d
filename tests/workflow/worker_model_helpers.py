"""Driving the workflow through its services (no HTTP): a project, workers, tasks, labels."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.projects import service as projects
from steelyard.tasks import create
from steelyard.workflow import service as workflow

CATEGORIES = ["cat", "dog", "bird"]


@dataclass(frozen=True)
class Setup:
    org_id: str
    project_id: str
    project: str
    customer: Actor


def project(db: Database, params: dict[str, Any], now: datetime) -> Setup:
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"wm-{uuid.uuid4().hex[:10]}").org
        customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        created = projects.create_project(
            s, customer, {"name": "p", "type": "categorization", "params": params}, now
        )
        return Setup(org.id, created.id, "p", customer)


def worker(db: Database, setup: Setup) -> Actor:
    with db.unit_of_work() as s:
        user = accounts.create_user(
            s,
            org_id=setup.org_id,
            email=f"w-{uuid.uuid4().hex[:12]}@x.io",
            password_hash=None,
            role="annotator",
        )
        return Actor(
            org_id=setup.org_id, is_test=False, kind="user", role="annotator", user_id=user.id
        )


def task(db: Database, setup: Setup, now: datetime) -> int:
    body = {
        "project": setup.project,
        "attachment": "x",
        "attachment_type": "text",
        "categories": CATEGORIES,
    }
    with db.unit_of_work() as s:
        return create.create_task(s, setup.customer, "categorization", body, now).task.seq


def label(db: Database, who: Actor, setup: Setup, answer: Any, now: datetime) -> tuple[int, bool]:
    """``who`` takes the next task of the project and answers it (``answer(task_seq)`` or a
    category); returns the task and whether the submit completed it."""
    with db.unit_of_work() as s:
        lease = workflow.next_assignment(
            s, who, project_name=setup.project, now=now, lease_seconds=600
        )
        assert lease is not None
        assignment_id, seq = lease.assignment.id, lease.assignment.task_seq
    category = answer(seq) if callable(answer) else answer
    body = {"response": {"category": category}}
    with db.unit_of_work(write=False) as s:
        target = workflow.submit_target(s, who, assignment_id, body, now)
    checked = workflow.check_submission(target, body)
    with db.unit_of_work() as s:
        stored = workflow.submit(s, who, checked, now)
    return seq, stored.status == "completed"
