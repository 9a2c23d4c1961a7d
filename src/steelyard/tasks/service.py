"""Task lifecycle: create (validated by its type), read, cancel, audit, ids, metadata, tags.

Every change a customer can see that ends a task's work (completed, error, audit) enqueues its
callback job in the same transaction.
"""

from __future__ import annotations

import random
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from steelyard.accounts.schemas import Actor
from steelyard.callbacks.urls import check_callback_form
from steelyard.db.base import new_id
from steelyard.db.dialect import increment_count
from steelyard.errors import Duplicate, InvalidState, NotFound, ValidationError
from steelyard.jobs import outbox
from steelyard.projects import service as projects
from steelyard.projects.models import Batch
from steelyard.tasks.models import Task, TaskRow, TaskTag
from steelyard.tasks.repository import readable
from steelyard.tasktypes import registry
from steelyard.timefmt import iso
from steelyard.validation import (
    json_object,
    optional_dict,
    optional_int,
    optional_str,
    str_list,
    under,
)

#: Keys every task type shares; the rest of the body goes to the type's params.
COMMON_KEYS = (
    "project",
    "batch",
    "callback_url",
    "instruction",
    "unique_id",
    "metadata",
    "tags",
    "priority",
)
MAX_TAGS = 100
#: ``task_tags.tag`` is a VARCHAR(300): PostgreSQL refuses longer text where SQLite stores it.
MAX_TAG_LENGTH = 300


@dataclass(frozen=True)
class NamedTask:
    """A new task with its project's and batch's names, which its wire form shows."""

    task: Task | TaskRow
    project_name: str | None
    batch_name: str | None


def create_task(
    session: Session,
    actor: Actor,
    type_name: str,
    body: Any,
    now: datetime,
    *,
    rng: random.Random | None = None,
) -> NamedTask:
    spec = registry.get(type_name)
    body = json_object(body)
    project, batch = _resolve_scope(session, actor, body)
    if batch is not None and batch.status == "canceled":
        raise InvalidState(
            f"Batch '{batch.name}' was cancelled; it takes no new tasks.", field="batch"
        )
    if batch is not None and batch.status == "completed":
        projects.reopen_batch(session, batch.id, now)
    unique_id = optional_str(body, "unique_id", max_length=500)
    if unique_id == "":
        unique_id = None
    metadata = optional_dict(body, "metadata") or {}
    tags = _unique(
        str_list(body.get("tags") or [], "tags", max_items=MAX_TAGS, max_length=MAX_TAG_LENGTH)
    )
    callback_url = optional_str(body, "callback_url") or None
    if callback_url:
        # Its address was judged by the edge (``callbacks.targets.prepare``), by the app's policy.
        check_callback_form(callback_url, field="callback_url")
    priority = optional_int(body, "priority") or 0
    instruction = optional_str(body, "instruction", max_length=100_000)

    own_params = {k: v for k, v in body.items() if k not in COMMON_KEYS}
    defaults = project.params if project is not None else {}
    project_instruction = defaults.get("instruction")
    alias = type_name.lower() if type_name.lower() in spec.aliases else None
    project_params = {k: v for k, v in defaults.items() if k != "instruction"}
    merged = spec.merge_params(project_params, own_params, alias=alias)
    params = spec.validate_params(merged, alias=alias)
    if project is not None and project.type not in (spec.name, *spec.aliases):
        raise ValidationError(
            f"Project '{project.name}' holds {project.type} tasks, not {type_name}.",
            field="project",
        )
    values: dict[str, Any] = {
        "task_id": new_id(),
        "org_id": actor.org_id,
        "is_test": actor.is_test,
        "project_id": project.id if project else None,
        "batch_id": batch.id if batch else None,
        "type": type_name.lower(),
        "status": "pending",
        "instruction": _join_instructions(instruction, project_instruction),
        "params": params,
        "metadata": metadata,
        "tags": tags,
        "unique_id": unique_id,
        "callback_url": callback_url,
        "priority": priority,
        "created_at": now,
        "updated_at": now,
        **_unset_at_create(),
    }
    try:
        # A unique_id already in use is found by the unique constraint rather than by a lookup
        # first (one statement less on every create). On PostgreSQL a violation dooms the
        # transaction, so the insert runs in a savepoint; SQLite undoes just the statement.
        # A concurrent create with the same unique_id makes PostgreSQL wait for the other
        # transaction, then report the violation: either way the answer is the same 409.
        with session.begin_nested() if not _is_sqlite(session) else nullcontext():
            seq = session.connection().execute(_INSERT_TASK, values).scalar_one()
    except IntegrityError:
        if unique_id is not None:
            _ensure_unique_id_free(session, actor, unique_id)
        raise
    if tags:
        session.connection().execute(
            _INSERT_TAGS, [{"task_seq": seq, "tag": t, "org_id": actor.org_id} for t in tags]
        )
    values["metadata_"] = values.pop("metadata")
    task: Task | TaskRow
    if actor.is_test:
        # The test environment has no workers: tasks complete at once with a response that is
        # valid for the type, and their callback fires like a live one's. Completing goes
        # through the ORM: the row is attached as already persistent, every column set.
        task = Task(seq=seq, **values)
        make_transient_to_detached(task)
        session.add(task)
        _count(session, task, +1)
        response = spec.synthetic_response(params, rng or random.Random(task.task_id))
        complete_task(session, task, response, now, confidence=1.0)
        session.flush()
    else:
        # Nothing else in this transaction touches a new live task: a plain record of what was
        # inserted is all the answer needs (an ORM object costs more than the insert did).
        task = TaskRow(seq=seq, **values)
        _count(session, task, +1)
    # The names are kept here: the session's identity map holds project and batch weakly.
    return NamedTask(task, project.name if project else None, batch.name if batch else None)


_TASKS = cast(Table, Task.__table__)
_INSERT_TASK = insert(_TASKS).returning(_TASKS.c.seq)
_INSERT_TAGS = insert(cast(Table, TaskTag.__table__))


def _unset_at_create() -> dict[str, Any]:
    """Columns a new task leaves empty, set explicitly so the attached object holds them all."""
    return {
        "response": None,
        "confidence": None,
        "callback_succeeded": None,
        "customer_review_status": None,
        "customer_review_comments": [],
        "prior_responses": [],
        "audits": [],
        "error": None,
        "lease_expires_at": None,
        "completed_at": None,
    }


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _resolve_scope(
    session: Session, actor: Actor, body: dict[str, Any]
) -> tuple[projects.ProjectRef | None, projects.BatchRef | None]:
    project_name = optional_str(body, "project", max_length=300)
    batch_name = optional_str(body, "batch", max_length=300)
    project = projects.project_ref(session, actor, name=project_name) if project_name else None
    batch = projects.batch_ref(session, actor, batch_name) if batch_name else None
    if batch is not None:
        if project is None:
            project = projects.project_ref(session, actor, project_id=batch.project_id)
        elif batch.project_id != project.id:
            raise ValidationError(
                f"Batch '{batch.name}' belongs to another project than '{project.name}'.",
                field="batch",
            )
    return project, batch


def _join_instructions(own: str | None, project: Any) -> str | None:
    """Scale appends the project's instruction after the task's own."""
    parts = [p for p in (own, project if isinstance(project, str) else None) if p]
    return "\n\n".join(parts) if parts else None


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# Built once: it runs on every create that carries a unique_id.
_TASK_BY_UNIQUE_ID = select(Task.task_id).where(
    Task.org_id == bindparam("org_id"),
    Task.is_test == bindparam("is_test"),
    Task.unique_id == bindparam("unique_id"),
)


def _ensure_unique_id_free(session: Session, actor: Actor, unique_id: str) -> None:
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


def _count(session: Session, task: Task | TaskRow, delta: int) -> None:
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
    _count(session, task, -1)
    task.status = status
    task.updated_at = now
    _count(session, task, +1)


def get_task(session: Session, actor: Actor, task_id: str, *, for_update: bool = False) -> Task:
    stmt = readable(actor).where(Task.task_id == task_id)
    if for_update:
        stmt = stmt.with_for_update()
    task = session.scalar(stmt)
    if task is None:
        raise NotFound(f"No task with id '{task_id}'.", field="task_id")
    return task


def complete_task(
    session: Session,
    task: Task,
    response: dict[str, Any],
    now: datetime,
    *,
    confidence: float | None = None,
) -> None:
    if task.status != "pending":
        raise InvalidState(f"Task {task.task_id} is {task.status}, not pending.", field="task_id")
    _set_status(session, task, "completed", now)
    task.response = response
    task.confidence = confidence
    task.completed_at = now
    task.lease_expires_at = None
    _enqueue_callback(session, task, "completed", now)
    _after_terminal(session, task, now)


def _enqueue_callback(session: Session, task: Task, event: str, now: datetime) -> None:
    if task.callback_url:
        outbox.enqueue(
            session,
            outbox.TASK_CALLBACK,
            {"task_id": task.task_id, "event": event},
            org_id=task.org_id,
            now=now,
        )


def _after_terminal(session: Session, task: Task, now: datetime) -> None:
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None:
            maybe_complete_batch(session, batch, now)


def maybe_complete_batch(session: Session, batch: Batch, now: datetime) -> None:
    """An in-progress batch completes when it has tasks and none of them is pending.

    The batch row is locked before counting: two transactions finishing the last two pending
    tasks would otherwise each see the other's task still pending, and neither would complete
    the batch (PostgreSQL, read committed). The lock makes the second one count after the
    first commits.
    """
    session.flush()
    session.refresh(batch, with_for_update=True)
    if batch.status != "in_progress":
        return
    counts = projects.batch_counts(session, batch)
    if counts["pending"] > 0 or sum(counts.values()) == 0:
        return
    batch.status = "completed"
    batch.completed_at = now
    batch.updated_at = now
    if batch.callback:
        outbox.enqueue(
            session,
            outbox.BATCH_CALLBACK,
            {"batch_id": batch.id},
            org_id=batch.org_id,
            now=now,
        )


def cancel_task(
    session: Session, actor: Actor, task_id: str, *, clear_unique_id: bool, now: datetime
) -> Task:
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
    _after_terminal(session, task, now)
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


def audit_task(session: Session, actor: Actor, task_id: str, body: Any, now: datetime) -> Task:
    body = json_object(body)
    accepted = body.get("accepted")
    if not isinstance(accepted, bool):
        raise ValidationError("'accepted' must be true or false.", field="accepted")
    comments = body.get("comments")
    if comments is not None and not isinstance(comments, str):
        raise ValidationError("'comments' must be a string.", field="comments")
    task = get_task(session, actor, task_id, for_update=True)
    if task.status != "completed":
        raise InvalidState(
            f"Task {task_id} is {task.status}; only completed tasks can be audited.",
            field="task_id",
        )
    fixed = body.get("response")
    result = "accepted" if accepted else "rejected"
    if fixed is not None:
        # Steelyard extension: a customer may send the corrected response with the audit.
        try:
            fixed = registry.get(task.type).validate_response(task.params, fixed)
        except ValidationError as exc:
            raise under("response", exc) from None
        task.prior_responses = [*task.prior_responses, task.response]
        task.response = fixed
        result = "fixed"
    task.customer_review_status = result
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
    _ensure_unique_id_free(session, actor, unique_id)
    try:
        # The change goes inside the savepoint: ``begin_nested`` flushes what is pending before
        # it starts, and a violation there would doom the whole transaction.
        with session.begin_nested():
            task.unique_id = unique_id
            task.updated_at = now
            session.flush()
    except IntegrityError:
        # Lost a race with a concurrent rename or create (PostgreSQL): answer the 409.
        _ensure_unique_id_free(session, actor, unique_id)
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
    given = _unique(
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
