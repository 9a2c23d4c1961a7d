"""Task lifecycle after create (``tasks.create``): read, complete, cancel, audit, ids, metadata,
tags.

Every change a customer can see that ends a task's work (completed, error, audit) enqueues its
callback job in the same transaction. Whether that also completes the task's batch is decided
in ``workflow.batches``, which wraps the changes that can.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, literal, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.db.dialect import increment_count, move_count
from steelyard.errors import Duplicate, InvalidState, NotFound, ValidationError
from steelyard.jobs import outbox
from steelyard.projects.models import Batch
from steelyard.tasks.models import Task, TaskRow, TaskTag
from steelyard.tasks.repository import readable
from steelyard.tasktypes import registry
from steelyard.timefmt import iso
from steelyard.validation import (
    json_object,
    optional_str,
    str_list,
    under,
)

MAX_TAGS = 100
#: ``task_tags.tag`` is a VARCHAR(300): PostgreSQL refuses longer text where SQLite stores it.
MAX_TAG_LENGTH = 300


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# Built once: it runs on every create that carries a unique_id.
_TASK_BY_UNIQUE_ID = select(Task.task_id).where(
    Task.org_id == bindparam("org_id"),
    Task.is_test == bindparam("is_test"),
    Task.unique_id == bindparam("unique_id"),
)


def ensure_unique_id_free(session: Session, actor: Actor, unique_id: str) -> None:
    existing = session.scalar(
        _TASK_BY_UNIQUE_ID,
        {"org_id": actor.org_id, "is_test": actor.is_test, "unique_id": unique_id},
    )
    if existing is not None:
        raise Duplicate(
            f'The unique_id ("{unique_id}") is already used for a different task ({existing}).',
            field="unique_id",
            existing_id=existing,
        )


def count_task(session: Session, task: Task | TaskRow, delta: int) -> None:
    increment_count(
        session,
        {
            "org_id": task.org_id,
            "is_test": task.is_test,
            "project_id": task.project_id or "",
            "batch_id": task.batch_id or "",
            "type": task.type,
            "status": task.status,
        },
        delta,
    )


def _set_status(session: Session, task: Task, status: str, now: datetime) -> None:
    count_task(session, task, -1)
    task.status = status
    task.updated_at = now
    count_task(session, task, +1)


def get_task(session: Session, actor: Actor, task_id: str, *, for_update: bool = False) -> Task:
    stmt = readable(actor).where(Task.task_id == task_id)
    if for_update:
        stmt = stmt.with_for_update()
    task = session.scalar(stmt)
    if task is None:
        raise NotFound(f"No task with id '{task_id}'.", field="task_id")
    return task


def set_completed(
    session: Session,
    task: Task,
    response: dict[str, Any],
    now: datetime,
    *,
    confidence: float | None = None,
) -> None:
    """Complete a pending task and queue its callback. Its batch is not looked at: callers go
    through ``workflow.batches.complete_task``, which completes the batch too when this was
    its last pending task."""
    if task.status != "pending":
        raise InvalidState(f"Task {task.task_id} is {task.status}, not pending.", field="task_id")
    _set_status(session, task, "completed", now)
    task.response = response
    task.confidence = confidence
    task.completed_at = now
    task.lease_expires_at = None
    task.rework = None
    if task.customer_review_status == "rejected":
        # Reworked after the customer's rejection: a new answer, awaiting their review again.
        task.customer_review_status = "pending"
    _enqueue_callback(session, task, "completed", now)


# Built once: it runs for every task a worker's label completes.
_COMPLETE = (
    update(Task)
    .where(Task.seq == bindparam("p_seq"), Task.status == "pending")
    .values(
        status="completed",
        response=bindparam("p_response", type_=Task.response.type),
        confidence=bindparam("p_confidence"),
        completed_at=bindparam("p_now"),
        updated_at=bindparam("p_now"),
        lease_expires_at=None,
        # As ``set_completed``: the rework note ends, and a task reworked after the customer's
        # rejection has a new answer awaiting their review again.
        rework=null(),
        customer_review_status=case(
            (Task.customer_review_status == "rejected", literal("pending")),
            else_=Task.customer_review_status,
        ),
    )
    .returning(
        Task.org_id,
        Task.is_test,
        Task.project_id,
        Task.batch_id,
        Task.type,
        Task.task_id,
        Task.callback_url,
    )
)


@dataclass(frozen=True, slots=True)
class Completed:
    """A task ``complete_pending`` completed, and how many of its scope's tasks (its project,
    batch and type) are still pending after it."""

    batch_id: str | None
    pending_left: int


def complete_pending(
    session: Session,
    seq: int,
    response: dict[str, Any],
    now: datetime,
    *,
    confidence: float | None = None,
) -> Completed:
    """``set_completed`` for the worker's hot path: the task by ``seq``, in one statement, with
    no ORM object loaded. Its batch is not looked at: callers go through
    ``workflow.batches.complete_pending_task``."""
    conn = session.connection()
    row = conn.execute(
        _COMPLETE, {"p_seq": seq, "p_response": response, "p_confidence": confidence, "p_now": now}
    ).first()
    if row is None:
        status = conn.scalar(select(Task.status).where(Task.seq == seq))
        raise InvalidState(f"Task with seq {seq} is {status}, not pending.", field="task_id")
    key = {
        "org_id": row.org_id,
        "is_test": row.is_test,
        "project_id": row.project_id or "",
        "batch_id": row.batch_id or "",
        "type": row.type,
    }
    left = move_count(session, key, "pending", "completed")
    if row.callback_url:
        outbox.enqueue(
            session,
            outbox.TASK_CALLBACK,
            completion_callback(row.task_id, response, confidence, now),
            org_id=row.org_id,
            now=now,
        )
    return Completed(row.batch_id, left)


def completion_callback(
    task_id: str, response: dict[str, Any] | None, confidence: float | None, now: datetime
) -> dict[str, Any]:
    """A completion callback's job payload: the completion itself, as it was when it happened
    (``callbacks.service`` lays it over the task as it is when sent), so a callback delivered
    or retried after the task was sent back for rework still reports that completion."""
    return {
        "task_id": task_id,
        "event": "completed",
        "completion": {
            "status": "completed",
            "response": response,
            "confidence": confidence,
            "completed_at": iso(now),
        },
    }


def _enqueue_callback(session: Session, task: Task, event: str, now: datetime) -> None:
    if task.callback_url:
        payload = (
            completion_callback(task.task_id, task.response, task.confidence, now)
            if event == "completed"
            else {"task_id": task.task_id, "event": event}
        )
        outbox.enqueue(session, outbox.TASK_CALLBACK, payload, org_id=task.org_id, now=now)


def set_canceled(
    session: Session, actor: Actor, task_id: str, *, clear_unique_id: bool, now: datetime
) -> Task:
    """Cancel a pending task. Its batch is not looked at: callers go through
    ``workflow.batches.cancel_task``."""
    task = get_task(session, actor, task_id, for_update=True)
    if task.status != "pending":
        # 400, never 409: the client crashes on a 409 from a body-less task path.
        raise InvalidState(
            f"Task {task_id} is {task.status}; only pending tasks can be canceled.",
            field="task_id",
        )
    _set_status(session, task, "canceled", now)
    task.lease_expires_at = None
    if clear_unique_id:
        task.unique_id = None
    session.flush()
    return task


def cancel_pending_in_batch(session: Session, batch: Batch, now: datetime) -> int:
    """Cancel every pending task of a batch in one statement; returns how many.

    On PostgreSQL the UPDATE waits for tasks a worker is submitting right now and then skips
    them (they are no longer pending), so nothing is canceled and completed at once.
    """
    types = (
        session.execute(
            update(Task)
            .where(
                Task.org_id == batch.org_id,
                Task.is_test == batch.is_test,
                Task.batch_id == batch.id,
                Task.status == "pending",
            )
            .values(status="canceled", updated_at=now, lease_expires_at=None)
            .returning(Task.type)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    for type_name, n in Counter(types).items():
        key = {
            "org_id": batch.org_id,
            "is_test": batch.is_test,
            "project_id": batch.project_id,
            "batch_id": batch.id,
            "type": type_name,
        }
        increment_count(session, {**key, "status": "pending"}, -n)
        increment_count(session, {**key, "status": "canceled"}, n)
    return len(types)


@dataclass(frozen=True, slots=True)
class Audit:
    """A customer's audit (``read_audit``); ``response``, a Steelyard extension, is the
    corrected response, checked against the task's params by ``check_audit_fix`` before the
    write transaction."""

    accepted: bool
    comments: str | None
    response: Any = None
    checked: bool = False


def read_audit(body: Any) -> Audit:
    body = json_object(body)
    accepted = body.get("accepted")
    if not isinstance(accepted, bool):
        raise ValidationError("'accepted' must be true or false.", field="accepted")
    comments = body.get("comments")
    if comments is not None and not isinstance(comments, str):
        raise ValidationError("'comments' must be a string.", field="comments")
    return Audit(accepted, comments, body.get("response"))


def check_audit_fix(task: Task, audit: Audit) -> Audit:
    """The corrected response checked against the task's params (which never change): pure,
    so the edge runs it with no transaction open."""
    try:
        fixed = registry.get(task.type).validate_response(task.params, audit.response)
    except ValidationError as exc:
        raise under("response", exc) from None
    return replace(audit, response=fixed, checked=True)


def audit_task(session: Session, actor: Actor, task_id: str, audit: Audit, now: datetime) -> Task:
    if audit.response is not None and not audit.checked:
        raise ValueError("check_audit_fix first: a response is checked before the write")
    task = get_task(session, actor, task_id, for_update=True)
    if task.status != "completed":
        raise InvalidState(
            f"Task {task_id} is {task.status}; only completed tasks can be audited.",
            field="task_id",
        )
    result = "accepted" if audit.accepted else "rejected"
    if audit.response is not None:
        task.prior_responses = [*task.prior_responses, task.response]
        task.response = audit.response
        result = "fixed"
    task.customer_review_status = result
    comments = audit.comments
    if comments:
        task.customer_review_comments = [*task.customer_review_comments, comments]
    task.audits = [
        *task.audits,
        {
            "audited_by": "customer",
            "audited_at": iso(now),
            "audit_time_secs": None,
            "audit_result": result,
            "comments": comments,
        },
    ]
    task.updated_at = now
    _enqueue_callback(session, task, "audit", now)
    session.flush()
    return task


def set_unique_id(session: Session, actor: Actor, task_id: str, body: Any, now: datetime) -> Task:
    body = json_object(body)
    unique_id = optional_str(body, "unique_id", max_length=500)
    if not unique_id:
        raise ValidationError("'unique_id' is required.", field="unique_id")
    task = get_task(session, actor, task_id, for_update=True)
    if task.unique_id == unique_id:
        return task
    ensure_unique_id_free(session, actor, unique_id)
    try:
        # The change goes inside the savepoint: ``begin_nested`` flushes what is pending before
        # it starts, and a violation there would doom the whole transaction.
        with session.begin_nested():
            task.unique_id = unique_id
            task.updated_at = now
            session.flush()
    except IntegrityError:
        # Lost a race with a concurrent rename or create (PostgreSQL): answer the 409.
        ensure_unique_id_free(session, actor, unique_id)
        raise
    return task


def clear_unique_id(session: Session, actor: Actor, task_id: str, now: datetime) -> Task:
    task = get_task(session, actor, task_id, for_update=True)
    task.unique_id = None
    task.updated_at = now
    session.flush()
    return task


def set_metadata(
    session: Session, actor: Actor, task_id: str, metadata: Any, now: datetime
) -> Task:
    if metadata is None:
        # The client sends ``body or None``: setting ``{}`` arrives as an empty body.
        metadata = {}
    if not isinstance(metadata, dict):
        raise ValidationError("The body must be the metadata JSON object.", field="metadata")
    task = get_task(session, actor, task_id, for_update=True)
    task.metadata_ = metadata
    task.updated_at = now
    session.flush()
    return task


def change_tags(
    session: Session, actor: Actor, task_id: str, tags: Any, *, mode: str, now: datetime
) -> Task:
    """``mode``: ``set`` replaces, ``add`` unions, ``delete`` removes.

    An empty body is an empty list: the client sends ``body or None``, so ``set_task_tags(id,
    [])`` (clear every tag) arrives without a body.
    """
    given = unique(
        str_list(
            [] if tags is None else tags, "tags", max_items=MAX_TAGS, max_length=MAX_TAG_LENGTH
        )
    )
    task = get_task(session, actor, task_id, for_update=True)
    current = list(task.tags or [])
    if mode == "set":
        new = given
    elif mode == "add":
        new = current + [t for t in given if t not in current]
    else:
        new = [t for t in current if t not in given]
    if len(new) > MAX_TAGS:
        raise ValidationError(f"A task may have at most {MAX_TAGS} tags.", field="tags")
    session.execute(delete(TaskTag).where(TaskTag.task_seq == task.seq))
    for tag in new:
        session.add(TaskTag(task_seq=task.seq, tag=tag, org_id=task.org_id))
    task.tags = new
    task.updated_at = now
    session.flush()
    return task
