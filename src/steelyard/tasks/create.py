"""Task create in three steps, so that nothing large runs under the database's write lock.

1. ``read_new_task``: the fields every type shares, checked; no database.
2. ``check_new_task``: the task's params merged over its project's and checked by the type, and
   the test-mode response made. This is the large part (a 10 MiB body of 100,000 labels takes
   a few hundred milliseconds), so it runs before the write transaction, against the project's
   params as read beforehand (``task_defaults`` in a read transaction, or the edge's
   ``projects.params.DEFAULTS`` cache).
3. ``insert_task``, in the write transaction: resolves the project and batch again and stores
   the task if the project's params version is the one checked against; else
   ``ParamsChanged`` with nothing written, and the edge checks again.

``create_task`` does all three in the caller's transaction, for small trusted bodies (the CLI's
demo seed, tests).
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from steelyard.accounts.schemas import Actor
from steelyard.callbacks.urls import check_callback_form
from steelyard.db.base import new_id
from steelyard.errors import InvalidState, ValidationError
from steelyard.projects import service as projects
from steelyard.projects import workflow_settings
from steelyard.projects.params import ParamsChanged, ProjectDefaults
from steelyard.tasks import service
from steelyard.tasks.models import Task, TaskRow, TaskTag
from steelyard.tasktypes import registry
from steelyard.tasktypes.base import TaskTypeSpec
from steelyard.validation import (
    json_object,
    optional_dict,
    optional_int,
    optional_str,
    str_list,
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


@dataclass(frozen=True)
class NamedTask:
    """A new task with its project's and batch's names, which its wire form shows."""

    task: Task | TaskRow
    project_name: str | None
    batch_name: str | None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A create call's body, read and checked without the database (``read_new_task``)."""

    type_name: str
    spec: TaskTypeSpec
    alias: str | None
    project_name: str | None
    batch_name: str | None
    unique_id: str | None
    metadata: dict[str, Any]
    tags: list[str]
    callback_url: str | None
    priority: int
    instruction: str | None
    own_params: dict[str, Any]

    @property
    def scope(self) -> tuple[str | None, str | None]:
        """What names the project whose params are the task's defaults."""
        return self.project_name, self.batch_name


@dataclass(frozen=True, slots=True)
class CheckedTask:
    """A task's params merged with its project's and checked (``check_new_task``): the large
    part of a create, done before its write transaction."""

    task_id: str
    params: dict[str, Any]
    #: The project (id and params version) they were checked against, if any.
    project: ProjectDefaults | None
    #: The instruction the task is stored with (its own, then its project's).
    instruction: str | None
    #: Test mode: the response the task completes with at once.
    synthetic: dict[str, Any] | None
    #: How many labels the task needs (its project's workflow settings, as checked against).
    redundancy: workflow_settings.Redundancy = workflow_settings.SINGLE
    #: Whether its labels' aggregate waits for a reviewer (the project's review setting).
    review: workflow_settings.Review = workflow_settings.NO_REVIEW


def read_new_task(type_name: str, body: Any) -> NewTask:
    """The fields every type shares, checked; the rest of the body is the type's params."""
    spec = registry.get(type_name)
    body = json_object(body)
    project_name = optional_str(body, "project", max_length=300)
    batch_name = optional_str(body, "batch", max_length=300)
    unique_id = optional_str(body, "unique_id", max_length=500)
    tags = service.unique(
        str_list(
            body.get("tags") or [],
            "tags",
            max_items=service.MAX_TAGS,
            max_length=service.MAX_TAG_LENGTH,
        )
    )
    callback_url = optional_str(body, "callback_url") or None
    if callback_url:
        # Its address was judged by the edge (``callbacks.targets.prepare``), by the app's policy.
        check_callback_form(callback_url, field="callback_url")
    lowered = type_name.lower()
    return NewTask(
        type_name=lowered,
        spec=spec,
        alias=lowered if lowered in spec.aliases else None,
        project_name=project_name or None,
        batch_name=batch_name or None,
        unique_id=unique_id or None,
        metadata=optional_dict(body, "metadata") or {},
        tags=tags,
        callback_url=callback_url,
        priority=optional_int(body, "priority") or 0,
        instruction=optional_str(body, "instruction", max_length=100_000),
        own_params={k: v for k, v in body.items() if k not in COMMON_KEYS},
    )


def task_defaults(session: Session, actor: Actor, new: NewTask) -> ProjectDefaults | None:
    """The params of the project the task names (or its batch's project), to check against."""
    if new.batch_name is not None:
        batch = projects.batch_ref(session, actor, new.batch_name)
        if new.project_name is None:
            return projects.project_defaults(session, actor, project_id=batch.project_id)
    if new.project_name is not None:
        return projects.project_defaults(session, actor, name=new.project_name)
    return None


def check_new_task(
    new: NewTask,
    project: ProjectDefaults | None,
    *,
    is_test: bool,
    rng: random.Random | None = None,
) -> CheckedTask:
    """Merge the task's params over its project's and check them (and make the test-mode
    response). Pure: the edge runs it before the write, in a thread when it is large."""
    spec = new.spec
    if project is not None and project.type not in (spec.name, *spec.aliases):
        raise ValidationError(
            f"Project '{project.name}' holds {project.type} tasks, not {new.type_name}.",
            field="project",
        )
    defaults = project.params if project is not None else {}
    project_params = {
        k: v for k, v in workflow_settings.task_defaults(defaults).items() if k != "instruction"
    }
    merged = spec.merge_params(project_params, new.own_params, alias=new.alias)
    params = spec.validate_params(merged, alias=new.alias)
    task_id = new_id()
    synthetic = None
    if is_test:
        synthetic = spec.synthetic_response(params, rng or random.Random(task_id))
    instruction = _join_instructions(new.instruction, defaults.get("instruction"))
    workflow = project.workflow if project is not None else workflow_settings.DEFAULT
    return CheckedTask(
        task_id, params, project, instruction, synthetic, workflow.redundancy, workflow.review
    )


def create_task(
    session: Session,
    actor: Actor,
    type_name: str,
    body: Any,
    now: datetime,
    *,
    rng: random.Random | None = None,
) -> NamedTask:
    """Read, check and insert in the caller's transaction: for the CLI's seed and other small,
    trusted bodies. The API checks before its write transaction (``read_new_task``,
    ``task_defaults``, ``check_new_task``, then ``insert_task``)."""
    new = read_new_task(type_name, body)
    checked = check_new_task(
        new, task_defaults(session, actor, new), is_test=actor.is_test, rng=rng
    )
    return insert_task(session, actor, new, checked, now)


def insert_task(
    session: Session, actor: Actor, new: NewTask, checked: CheckedTask, now: datetime
) -> NamedTask:
    """Store a checked task. ``ParamsChanged`` (nothing written) when its project is not the
    one, at the params version, that ``checked`` was checked against. A test task completes
    here; whether its batch does is ``workflow.batches.insert_task``'s to say."""
    project, batch = _resolve_scope(session, actor, new)
    expected = checked.project
    if (project is None) != (expected is None) or (
        project is not None
        and expected is not None
        and (project.id, project.version) != (expected.id, expected.version)
    ):
        raise ParamsChanged()
    if batch is not None and batch.status == "canceled":
        raise InvalidState(
            f"Batch '{batch.name}' was cancelled; it takes no new tasks.", field="batch"
        )
    if batch is not None and batch.status == "completed":
        projects.reopen_batch(session, batch.id, now)
    values: dict[str, Any] = {
        "task_id": checked.task_id,
        "org_id": actor.org_id,
        "is_test": actor.is_test,
        "project_id": project.id if project else None,
        "batch_id": batch.id if batch else None,
        "type": new.type_name,
        "status": "pending",
        "instruction": checked.instruction,
        "params": checked.params,
        "metadata": new.metadata,
        "tags": new.tags,
        "unique_id": new.unique_id,
        "callback_url": new.callback_url,
        "priority": new.priority,
        "created_at": now,
        "updated_at": now,
        "labels_needed": checked.redundancy.labels,
        "labels_max": checked.redundancy.max_labels,
        "target_confidence": checked.redundancy.target_confidence,
        "review_mode": None if checked.review.mode == "none" else checked.review.mode,
        "review_value": checked.review.value,
        **_unset_at_create(),
    }
    unique_id = new.unique_id
    tags = new.tags
    try:
        # A unique_id already in use is found by the unique constraint rather than by a lookup
        # first (one statement less on every create). On PostgreSQL a violation dooms the
        # transaction, so the insert runs in a savepoint; SQLite undoes just the statement.
        # A concurrent create with the same unique_id makes PostgreSQL wait for the other
        # transaction, then report the violation: either way the answer is the same 409.
        with session.begin_nested() if not service.is_sqlite(session) else nullcontext():
            seq = session.connection().execute(_INSERT_TASK, values).scalar_one()
    except IntegrityError:
        if unique_id is not None:
            service.ensure_unique_id_free(session, actor, unique_id)
        raise
    if tags:
        session.connection().execute(
            _INSERT_TAGS, [{"task_seq": seq, "tag": t, "org_id": actor.org_id} for t in tags]
        )
    values["metadata_"] = values.pop("metadata")
    task: Task | TaskRow
    if checked.synthetic is not None:
        # The test environment has no workers: tasks complete at once with a response that is
        # valid for the type (made with the check, outside this transaction), and their
        # callback fires like a live one's. Completing goes through the ORM: the row is
        # attached as already persistent, every column set.
        task = Task(seq=seq, **values)
        make_transient_to_detached(task)
        session.add(task)
        service.count_task(session, task, +1)
        service.set_completed(session, task, checked.synthetic, now, confidence=1.0)
        session.flush()
    else:
        # Nothing else in this transaction touches a new live task: a plain record of what was
        # inserted is all the answer needs (an ORM object costs more than the insert did).
        task = TaskRow(seq=seq, **values)
        service.count_task(session, task, +1)
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
        "labels_done": 0,
        "leases_open": 0,
        "rework": None,
    }


def _resolve_scope(
    session: Session, actor: Actor, new: NewTask
) -> tuple[projects.ProjectRef | None, projects.BatchRef | None]:
    project_name, batch_name = new.scope
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
