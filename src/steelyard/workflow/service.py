"""The minimal labeling path: lease the next task to a worker, take the worker's response.

A pending task carries ``lease_expires_at`` while a worker holds it. Taking a lease is a
compare-and-set on that column (``UPDATE ... WHERE lease is free``), so two workers asking at
the same moment can never both get the same task, on SQLite (writers serialised) or on
PostgreSQL (the UPDATE re-checks the row after waiting for its lock; candidates are picked with
``SKIP LOCKED`` so concurrent workers rarely collide at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session, defer

from steelyard.accounts.schemas import Actor
from steelyard.db.dialect import skip_locked
from steelyard.errors import Forbidden, InvalidState, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch
from steelyard.tasks.models import Task
from steelyard.tasktypes import registry
from steelyard.validation import under
from steelyard.workflow import batches
from steelyard.workflow.models import Assignment, Label

#: How often to retry when the chosen task was taken between choosing and leasing it.
CANDIDATES = 16
WORKER_ROLES = ("annotator", "reviewer", "manager", "admin", "owner")


@dataclass(frozen=True)
class Lease:
    assignment: Assignment
    task: Task


def next_assignment(
    session: Session,
    actor: Actor,
    *,
    project_name: str | None,
    now: datetime,
    lease_seconds: int,
) -> Lease | None:
    if actor.kind != "user" or actor.user_id is None or actor.role not in WORKER_ROLES:
        raise Forbidden("Only signed-in workers can take tasks.")
    project_id = projects.get_project(session, actor, project_name).id if project_name else None
    # A worker who already holds a live lease gets it back instead of a second task.
    held = session.execute(
        select(Assignment, Task)
        .join(Task, Task.seq == Assignment.task_seq)
        .where(
            Assignment.user_id == actor.user_id,
            Assignment.org_id == actor.org_id,
            Assignment.status == "active",
            Assignment.expires_at > now,
            Task.status == "pending",
        )
        .limit(1)
    ).first()
    if held is not None:
        assignment, task = held
        if project_id is None or task.project_id == project_id:
            return Lease(assignment, task)

    free = or_(Task.lease_expires_at.is_(None), Task.lease_expires_at <= now)
    # Tasks of a batch in staging wait for ``finalize`` (Scale: finalizing starts work); a paused
    # batch's tasks wait for resume. An uncorrelated NOT IN, computed once: a correlated NOT
    # EXISTS made PostgreSQL sort every pending task before taking one.
    held_back = select(Batch.id).where(
        Batch.org_id == actor.org_id,
        Batch.is_test == false(),
        Batch.status.in_(("staging", "paused")),
    )
    stmt = select(Task.seq).where(
        Task.org_id == actor.org_id,
        Task.is_test == false(),  # "= false", not "IS false": only "=" can use the indexes
        Task.status == "pending",
        free,
        or_(Task.batch_id.is_(None), Task.batch_id.not_in(held_back)),
    )
    if project_id is not None:
        stmt = stmt.where(Task.project_id == project_id)
    # One candidate at a time: locking several (SKIP LOCKED) while taking only one hid the rest
    # from concurrent workers, who then found every free task locked and went away empty-handed.
    stmt = skip_locked(session, stmt.order_by(Task.seq).limit(1))
    expires = now + timedelta(seconds=lease_seconds)
    for _attempt in range(CANDIDATES):
        seq = session.scalar(stmt)
        if seq is None:
            return None
        # Compare-and-set, and the leased task back in the same statement.
        leased = session.execute(
            update(Task)
            .where(Task.seq == seq, Task.status == "pending", free)
            .values(lease_expires_at=expires)
            .returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True)
        ).scalar_one_or_none()
        if leased is None:
            continue
        # An earlier holder whose lease ran out loses it for good.
        session.execute(
            update(Assignment)
            .where(Assignment.task_seq == seq, Assignment.status == "active")
            .values(status="expired")
            .execution_options(synchronize_session=False)
        )
        assignment = Assignment(
            org_id=actor.org_id,
            task_seq=seq,
            user_id=actor.user_id,
            status="active",
            started_at=now,
            expires_at=expires,
        )
        session.add(assignment)
        session.flush()
        return Lease(assignment, leased)
    return None


@dataclass(frozen=True, slots=True)
class SubmitTarget:
    """What a worker's response is checked against: its task's type and params, read before
    the write transaction (``submit_target``). A task's params never change afterwards."""

    assignment_id: str
    task_seq: int
    type: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Submission:
    """A worker's response, checked (``check_submission``)."""

    assignment_id: str
    task_seq: int
    response: dict[str, Any]


def submit_target(
    session: Session, actor: Actor, assignment_id: str, body: Any, now: datetime
) -> SubmitTarget:
    """Read (a read transaction is enough) the assignment and its task's params; refuse at once
    what the write would refuse, before the response is checked."""
    _check_body(body)
    assignment = _assignment(session, actor, assignment_id, lock=False)
    task = session.execute(
        select(Task.status, Task.lease_expires_at, Task.type, Task.params).where(
            Task.seq == assignment.task_seq, Task.org_id == actor.org_id
        )
    ).one()
    _check_open(assignment, task.status, task.lease_expires_at, now)
    return SubmitTarget(assignment.id, assignment.task_seq, task.type, task.params)


def check_submission(target: SubmitTarget, body: Any) -> Submission:
    """The response checked against the task's params: the large part of a submit, pure, so
    the edge runs it with no transaction open (in a worker thread)."""
    _check_body(body)
    try:
        response = registry.get(target.type).validate_response(target.params, body["response"])
    except ValidationError as exc:
        raise under("response", exc) from None
    return Submission(target.assignment_id, target.task_seq, response)


def _check_body(body: Any) -> None:
    if not isinstance(body, dict) or "response" not in body:
        raise ValidationError('The body must be {"response": {...}}.', field="response")


def submit(
    session: Session, actor: Actor, submission: Submission, now: datetime
) -> tuple[Assignment, Task]:
    """Store a checked response as the assignment's label and complete the task."""
    assignment = _assignment(session, actor, submission.assignment_id, lock=True)
    # The params are not read: they were checked against before this transaction, and
    # decoding a large task's params here would hold the write lock for it.
    task = session.scalar(
        select(Task)
        .where(Task.seq == assignment.task_seq)
        .options(defer(Task.params, raiseload=True))
        .with_for_update()
    )
    assert task is not None and task.seq == submission.task_seq
    # Refusals roll the transaction back, so the assignment is left as it was; an expired one is
    # simply never leased back (leases are matched on ``expires_at``).
    _check_open(assignment, task.status, task.lease_expires_at, now)
    response = submission.response
    assignment.status = "submitted"
    assignment.submitted_at = now
    assignment.active_seconds = (now - assignment.started_at).total_seconds()
    session.add(
        Label(
            org_id=actor.org_id,
            task_seq=task.seq,
            assignment_id=assignment.id,
            user_id=assignment.user_id,
            response=response,
            created_at=now,
        )
    )
    batches.complete_task(session, task, response, now, confidence=None)
    session.flush()
    return assignment, task


def _assignment(session: Session, actor: Actor, assignment_id: str, *, lock: bool) -> Assignment:
    stmt = select(Assignment).where(
        Assignment.id == assignment_id, Assignment.org_id == actor.org_id
    )
    assignment = session.scalar(stmt.with_for_update() if lock else stmt)
    if assignment is None or assignment.user_id != actor.user_id:
        raise NotFound(f"No assignment with id '{assignment_id}'.", field="assignment_id")
    return assignment


def _check_open(
    assignment: Assignment, task_status: str, lease_expires_at: datetime | None, now: datetime
) -> None:
    if assignment.status != "active":
        raise InvalidState(f"This assignment is {assignment.status}.", field="assignment_id")
    if task_status != "pending":
        raise InvalidState(f"The task is {task_status} and takes no more labels.", field="task")
    if assignment.expires_at <= now and lease_expires_at != assignment.expires_at:
        raise InvalidState(
            "The lease on this task ran out and it went to another worker.", field="assignment_id"
        )
