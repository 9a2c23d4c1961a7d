"""Which pending tasks a worker may be handed, and in which order.

Eligibility (Studio's workforce model): a project with no Studio assignments is open to every
worker of the organization; a project with assignments only to the workers assigned to it; a
project a worker is paused from for quality (``workflow.worker_quality``) not to them; a
batch assigned to project groups only to members of at least one of those groups (and, as its
tasks are its project's, only if the project is open to them). Tasks of a batch in staging or
paused wait.

Order: a Studio-prioritized batch (rank 1 first, ``set_priorities``) before any other, one batch
at a time; unprioritized batches and tasks without a batch after them, together; within each,
higher task ``priority`` first (Scale: the higher the number, the sooner), then the oldest.

``work_scope`` reads what decides this once per call, in three small queries (the organization's
restricted projects, the worker's pauses, and its open batches that are held back, prioritized
or group-restricted);
``candidates`` then gives one statement per prioritized batch and one for the rest, each a walk
of a partial index of the pending tasks in work order (migration 0009), never a sort.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    bindparam,
    exists,
    false,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import Forbidden
from steelyard.projects.models import Batch, Project
from steelyard.studio.models import BatchGroup, ProjectGroupMember, StudioAssignment
from steelyard.tasks.models import Task
from steelyard.workflow import worker_quality
from steelyard.workflow.models import Assignment, WorkerPause

#: A literal, not a bound parameter: only then can the planners use the partial indexes.
PENDING: ColumnElement[str] = literal_column("'pending'")
#: Batches whose tasks may be pending; ``reopen_batch`` moves a completed one back to
#: ``in_progress`` when it takes a task, so no pending task sits in a completed batch.
OPEN_BATCH_STATUSES = ("staging", "paused", "in_progress")


@dataclass(frozen=True)
class WorkScope:
    """What one ``next`` call may hand out, read once per call."""

    project_id: str | None
    #: Projects with Studio assignments, none of them to this worker.
    blocked_projects: tuple[str, ...]
    #: Left out of the unprioritized walk: held back, group-restricted to others, or
    #: prioritized (those are walked first, one by one).
    excluded_batches: tuple[str, ...]
    #: The prioritized batches the worker may work on, in Studio order.
    prioritized: tuple[str, ...]
    #: Projects whose qualification the worker has not passed (``without_projects``).
    unqualified: tuple[str, ...] = ()


def _scope_templates(in_project: bool) -> tuple[Any, Any]:
    """The two queries behind ``work_scope``: projects assigned to other workers only, and the
    open batches that are held back, prioritized or group-restricted. Built once (module
    level): values are bound at execution (``org_id``, ``user_id``, ``project_id``)."""
    org_id: BindParameter[str] = bindparam("org_id")
    user_id: BindParameter[str] = bindparam("user_id")
    assigned_to_me = exists().where(
        StudioAssignment.org_id == org_id,
        StudioAssignment.user_id == user_id,
        StudioAssignment.project_id == Project.id,
    )
    blocked_stmt = select(Project.id).where(
        Project.org_id == org_id,
        Project.is_test == false(),
        exists().where(StudioAssignment.project_id == Project.id),
        ~assigned_to_me,
    )
    restricted = exists().where(BatchGroup.batch_id == Batch.id)
    member = exists().where(
        BatchGroup.batch_id == Batch.id,
        ProjectGroupMember.group_id == BatchGroup.group_id,
        ProjectGroupMember.user_id == user_id,
    )
    batch_stmt = select(
        Batch.id,
        Batch.project_id,
        Batch.status,
        Batch.priority,
        restricted.label("restricted"),
        member.label("member"),
    ).where(
        Batch.org_id == org_id,
        Batch.is_test == false(),
        Batch.status.in_(OPEN_BATCH_STATUSES),
        or_(Batch.status != "in_progress", Batch.priority.is_not(None), restricted),
    )
    if in_project:
        blocked_stmt = blocked_stmt.where(Project.id == bindparam("project_id"))
        batch_stmt = batch_stmt.where(Batch.project_id == bindparam("project_id"))
    return blocked_stmt, batch_stmt


_SCOPE = {in_project: _scope_templates(in_project) for in_project in (False, True)}


def _scope_params(actor: Actor, user_id: str, project_id: str | None) -> dict[str, Any]:
    return {"org_id": actor.org_id, "user_id": user_id, "project_id": project_id}


def scope_statements(actor: Actor, user_id: str, project_id: str | None) -> tuple[Any, Any]:
    """The two queries behind ``work_scope`` with their values bound (to explain them)."""
    params = _scope_params(actor, user_id, project_id)
    blocked, batches = _SCOPE[project_id is not None]
    return blocked.params(params), batches.params(params)


def paused_statement(actor: Actor, user_id: str, project_id: str | None) -> Any:
    """The projects the worker is paused from for quality (``workflow.worker_quality``), with
    the reason and the pause: a seek per blocking status on ``ix_worker_pauses_org_status``."""
    stmt = select(
        WorkerPause.project_id, WorkerPause.reason, WorkerPause.id, WorkerPause.status
    ).where(
        WorkerPause.org_id == actor.org_id,
        WorkerPause.status.in_(worker_quality.BLOCKING_LITERALS),
        WorkerPause.user_id == user_id,
    )
    if project_id is not None:
        stmt = stmt.where(WorkerPause.project_id == project_id)
    return stmt


def work_scope(
    session: Session, actor: Actor, user_id: str, project_id: str | None, project_name: str = ""
) -> WorkScope:
    """The worker's scope; ``Forbidden`` (naming ``project``) when ``project_id`` is a project
    assigned to other workers only, or one the worker is paused from (saying why)."""
    blocked_stmt, batch_stmt = _SCOPE[project_id is not None]
    params = _scope_params(actor, user_id, project_id)
    conn = session.connection()
    blocked_projects = tuple(conn.scalars(blocked_stmt, params))
    if project_id is not None and blocked_projects:
        raise Forbidden(
            f"You are not assigned to project '{project_name}'; ask a manager to assign you.",
            field="project",
        )
    paused = session.execute(paused_statement(actor, user_id, project_id)).all()
    if project_id is not None and paused:
        _, reason, pause_id, status = paused[0]
        then = {
            "paused": f"appeal with POST /api/work/pauses/{pause_id}/appeal.",
            "appealed": "your appeal is waiting for a decision.",
            "upheld": "your appeal was decided: the pause stands.",
        }[status]
        raise Forbidden(
            f"You are paused from project '{project_name}': {reason} See GET /api/work/quality; "
            + then,
            field="project",
        )
    blocked_projects += tuple(sorted({row[0] for row in paused} - set(blocked_projects)))
    excluded: list[str] = []
    ranked: list[tuple[int, str]] = []
    blocked = set(blocked_projects)
    for batch_id, batch_project, status, priority, is_restricted, is_member in conn.execute(
        batch_stmt, params
    ):
        barred = bool(is_restricted) and not is_member
        if status != "in_progress" or barred or priority is not None:
            excluded.append(batch_id)
        open_to_me = status == "in_progress" and not barred and batch_project not in blocked
        if open_to_me and priority is not None:
            ranked.append((priority, batch_id))
    # Studio ranks are distinct per pending batch (set_priorities); the id only breaks a tie
    # left by batches prioritized in different calls, deterministically.
    ranked.sort()
    return WorkScope(
        project_id=project_id,
        blocked_projects=blocked_projects,
        excluded_batches=tuple(excluded),
        prioritized=tuple(batch_id for _, batch_id in ranked),
    )


@functools.cache
def _walk(
    dialect: str,
    *,
    batch: bool,
    project: bool,
    blocked: bool,
    excluded: bool,
    unqualified: bool = False,
    lock: bool = True,
) -> Select[Any]:
    """One candidate statement shape, built once per dialect: the pending tasks this worker has
    neither labeled nor skipped, in work order, the first one only.

    ``batch``: within one (prioritized) batch; else the rest, within ``project`` or outside the
    ``blocked`` projects, and outside the ``excluded`` batches (expanding lists); in either,
    outside the ``unqualified`` projects. ``lock``: skip rows other workers are taking
    (PostgreSQL), for a walk that leases what it finds.
    """
    user_id: BindParameter[str] = bindparam("user_id")
    # Probed per candidate through ix_assignments_task_user (task, worker): the worker's own
    # history can be long, the tasks' short (at most labels_max rows each).
    mine = exists().where(
        Assignment.task_seq == Task.seq,
        Assignment.user_id == user_id,
        Assignment.status.in_((literal_column("'submitted'"), literal_column("'skipped'"))),
    )
    stmt = select(Task.seq).where(
        Task.org_id == bindparam("org_id"),
        Task.is_test == false(),  # "= false", not "IS false": only "=" can use the indexes
        Task.status == PENDING,
        Task.leases_open + Task.labels_done < Task.labels_needed,
        ~mine,
    )
    if unqualified:
        stmt = stmt.where(
            or_(
                Task.project_id.is_(None),
                Task.project_id.not_in(bindparam("unqualified", expanding=True)),
            )
        )
    if batch:
        stmt = stmt.where(Task.batch_id == bindparam("batch_id"))
    else:
        if project:
            stmt = stmt.where(Task.project_id == bindparam("project_id"))
        elif blocked:
            stmt = stmt.where(
                or_(
                    Task.project_id.is_(None),
                    Task.project_id.not_in(bindparam("blocked", expanding=True)),
                )
            )
        if excluded:
            stmt = stmt.where(
                or_(
                    Task.batch_id.is_(None),
                    Task.batch_id.not_in(bindparam("excluded", expanding=True)),
                )
            )
    # One candidate at a time: locking several (SKIP LOCKED) while taking only one hid the rest
    # from concurrent workers, who then found every free task locked and went away empty-handed.
    stmt = stmt.order_by(Task.priority.desc(), Task.seq).limit(1)
    if lock and dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


def candidates(
    session: Session, actor: Actor, user_id: str, scope: WorkScope
) -> list[tuple[Select[Any], dict[str, Any]]]:
    """Statements (with their values) giving the next candidate's ``seq``, to be tried in
    order: one per prioritized batch, then the unprioritized rest."""
    dialect = session.get_bind().dialect.name
    base: dict[str, Any] = {"org_id": actor.org_id, "user_id": user_id}
    unqualified = bool(scope.unqualified)
    if unqualified:
        base["unqualified"] = list(scope.unqualified)
    flags = {"project": False, "blocked": False, "excluded": False, "unqualified": unqualified}
    one_batch = _walk(dialect, batch=True, **flags)
    out = [(one_batch, {**base, "batch_id": b}) for b in scope.prioritized]
    rest: dict[str, Any] = dict(base)
    project = scope.project_id is not None
    blocked = not project and bool(scope.blocked_projects)
    excluded = bool(scope.excluded_batches)
    if project:
        rest["project_id"] = scope.project_id
    if blocked:
        rest["blocked"] = list(scope.blocked_projects)
    if excluded:
        rest["excluded"] = list(scope.excluded_batches)
    walk = _walk(
        dialect,
        batch=False,
        project=project,
        blocked=blocked,
        excluded=excluded,
        unqualified=unqualified,
    )
    out.append((walk, rest))
    return out


def without_projects(scope: WorkScope, projects: tuple[str, ...]) -> WorkScope:
    """``scope`` with no task of ``projects`` (the worker is not qualified for them yet)."""
    return replace(scope, unqualified=tuple(sorted({*scope.unqualified, *projects})))


def has_work(session: Session, actor: Actor, user_id: str, scope: WorkScope) -> bool:
    """Whether ``candidates`` would find a task for the worker in ``scope`` (for one project),
    asked without locking anything: gold is served only beside live work
    (``workflow.quality_serving``)."""
    assert scope.project_id is not None
    barred = sorted(set(scope.excluded_batches) - set(scope.prioritized))
    params: dict[str, Any] = {
        "org_id": actor.org_id,
        "user_id": user_id,
        "project_id": scope.project_id,
    }
    if barred:
        params["excluded"] = barred
    walk = _walk(
        session.get_bind().dialect.name,
        batch=False,
        project=True,
        blocked=False,
        excluded=bool(barred),
        lock=False,
    )
    return session.connection().scalar(walk, params) is not None
