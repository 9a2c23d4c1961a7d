"""The review step's service, on SQLite and PostgreSQL: what a submit costs with and without
review, one reviewer per review under concurrency, and the settings and rules it reads."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import FrozenClock
from steelyard.db.engine import Database
from steelyard.errors import ValidationError
from steelyard.projects import service as projects
from steelyard.projects import workflow_settings as ws
from steelyard.tasks import create
from steelyard.workflow import review
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Review
from tests.db.statements import statements

#: From the real now: the session's live server's job runner reaps leases by the real clock,
#: and would take back leases that a clock in the past had given out.
CLOCK = FrozenClock(datetime.now(UTC))


def _org(db: Database) -> tuple[Actor, list[Actor]]:
    """A customer and eight people (reviewers, who may also label)."""
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"rv-{uuid.uuid4().hex[:10]}").org
        customer = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        people = []
        for i in range(8):
            user = accounts.create_user(
                s, org_id=org.id, email=f"p{i}-{org.id}@x.io", password_hash=None, role="reviewer"
            )
            people.append(
                Actor(org_id=org.id, is_test=False, kind="user", role="reviewer", user_id=user.id)
            )
    return customer, people


def _project(db: Database, customer: Actor, params: dict[str, Any] | None, n: int = 1) -> str:
    name = f"p-{uuid.uuid4().hex[:6]}"
    with db.unit_of_work() as s:
        body: dict[str, Any] = {"name": name, "type": "categorization"}
        if params is not None:
            body["params"] = params
        projects.create_project(s, customer, body, CLOCK.now())
        for i in range(n):
            task = {"project": name, "attachment": f"t{i}", "categories": ["a", "b"]}
            create.create_task(s, customer, "categorization", task, CLOCK.now())
    return name


def _submit(db: Database, me: Actor, project: str) -> tuple[list[str], workflow.Submitted]:
    """``me`` labels the project's next task; the SQL of the submit's write, and what it
    stored (``status`` ``completed`` when the label completed the task)."""
    with db.unit_of_work() as s:
        lease = workflow.next_assignment(
            s, me, project_name=project, now=CLOCK.now(), lease_seconds=60
        )
        assert lease is not None
        assignment_id = lease.assignment.id
    body = {"response": {"category": "a"}}
    with db.unit_of_work(write=False) as s:
        target = workflow.submit_target(s, me, assignment_id, body, CLOCK.now())
    checked = workflow.check_submission(target, body)
    with statements(db) as seen, db.unit_of_work() as s:
        stored = workflow.submit(s, me, checked, CLOCK.now())
    return seen, stored


def test_a_submit_without_review_reads_nothing_more(db: Database) -> None:
    customer, people = _org(db)
    plain = _project(db, customer, None)
    none = _project(db, customer, {"review": {"mode": "none"}})
    everything = _project(db, customer, {"review": {"mode": "all"}})
    plain_sql, done = _submit(db, people[0], plain)
    assert done.status == "completed"
    none_sql, done = _submit(db, people[1], none)
    assert done.status == "completed"
    # The review setting is on the task row the submit reads anyway: no project read, no
    # reviews table, not one statement more.
    assert len(none_sql) == len(plain_sql), (none_sql, plain_sql)
    for sql in none_sql:
        assert "reviews" not in sql and "FROM projects" not in sql, sql
    held_sql, done = _submit(db, people[2], everything)
    assert done.status == "pending"
    assert sum("INSERT INTO reviews" in sql for sql in held_sql) == 1
    # Held, not completed: no callback job, no change of the task counters.
    assert not any("INSERT INTO jobs" in sql or "task_counts" in sql for sql in held_sql)


def test_concurrent_reviewers_never_share_a_review(db: Database) -> None:
    customer, people = _org(db)
    project = _project(db, customer, {"review": {"mode": "all"}}, n=3)
    labeler, *reviewers = people
    for _ in range(3):
        _submit(db, labeler, project)
    taken: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def take(me: Actor) -> None:
        try:
            barrier.wait()
            with db.unit_of_work() as s:
                lease = review.next_review(
                    s, me, project_name=project, now=CLOCK.now(), lease_seconds=60
                )
                if lease is not None:
                    taken.append(lease.review.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(me,)) for me in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(taken) == 3 and len(set(taken)) == 3
    with db.unit_of_work(write=False) as s:
        rows = s.scalars(select(Review).where(Review.org_id == customer.org_id)).all()
    assert {r.status for r in rows} == {"active"}
    assert len({r.reviewer_id for r in rows}) == 3


def test_reason_for_each_mode() -> None:
    assert review.reason_for(None, None, "t", 0.1) is None
    assert review.reason_for("all", None, "t", 0.99) == "all"
    assert review.reason_for("disagreement", 0.8, "t", 0.79) == "disagreement"
    assert review.reason_for("disagreement", 0.8, "t", 0.8) is None
    assert review.reason_for("disagreement", 0.8, "t", None) == "disagreement"
    inside = next(f"t{i}" for i in range(100) if review.sampled(f"t{i}", 0.3))
    outside = next(f"t{i}" for i in range(100) if not review.sampled(f"t{i}", 0.3))
    assert review.reason_for("sampled", 0.3, inside, 1.0) == "sampled"
    assert review.reason_for("sampled", 0.3, outside, 0.0) is None


def test_review_settings_read_from_params() -> None:
    assert ws.read({}).review == ws.NO_REVIEW
    assert ws.read({"review": {"mode": "sampled"}}).review == ws.Review("sampled", fraction=0.2)
    assert ws.read({"review": {"mode": "disagreement"}}).review == ws.Review(
        "disagreement", agreement_below=0.8
    )
    settings = ws.read(
        {"pipeline": "consensus_task", "consensus_attempts": 3, "review": {"mode": "all"}}
    )
    assert (settings.redundancy.labels, settings.review.mode) == (3, "all")
    # Review does not need a pipeline, and is no task default.
    assert ws.read({"review": {"mode": "all"}}).redundancy == ws.SINGLE
    assert ws.task_defaults({"review": {"mode": "all"}, "categories": ["a"]}) == {
        "categories": ["a"]
    }
    with pytest.raises(ValidationError) as caught:
        ws.read({"review": {"mode": "sampled", "fraction": 2}})
    assert caught.value.field == "params.review.fraction"
    # A pipeline sent replaces the redundancy, not the review; a review sent replaces it.
    current = {"pipeline": "consensus_task", "consensus_attempts": 2, "review": {"mode": "all"}}
    assert ws.superseded(current, {"pipeline": "standard_task"}) == {"review": {"mode": "all"}}
    assert ws.superseded(current, {"review": {"mode": "none"}}) == current
