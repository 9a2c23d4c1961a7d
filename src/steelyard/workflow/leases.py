"""Leases: which worker labels which task, k workers per task at once.

A pending task counts its stored labels (``labels_done``) and its active assignments
(``leases_open``: live ones, and expired ones until they are reclaimed). A lease is taken by a
compare-and-set on those counters::

    UPDATE tasks SET leases_open = leases_open + 1
    WHERE seq = :s AND status = 'pending' AND leases_open + labels_done < labels_needed

so no task ever holds more leases plus labels than it needs, on SQLite (writers serialised) and
on PostgreSQL (the UPDATE re-checks the row after waiting for its lock; candidates are picked
with ``SKIP LOCKED`` so concurrent workers rarely collide). Every change of an assignment's
status is itself a compare-and-set on ``status = 'active'`` that moves the counters in the same
transaction, so an assignment's slot is given back exactly once: by its submit (as a label), its
release, its skip, or the reaper once it has expired. An expired assignment keeps its slot until
then, which is why its holder may still heartbeat or submit it.

A worker holds at most one active assignment (a partial unique index, which the insert targets
with ``ON CONFLICT DO NOTHING``); asking again returns it. Lock order on PostgreSQL is always
assignment rows, then task rows (the lease insert locks only its own new row).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.db.dialect import skip_locked
from steelyard.errors import AlreadySubmitted, Forbidden, InvalidState, NotFound
from steelyard.projects import service as projects
from steelyard.tasks.models import Task
from steelyard.workflow import eligibility
from steelyard.workflow.models import Assignment

#: How often to retry when the chosen task was taken between choosing and leasing it.
CANDIDATES = 16
WORKER_ROLES = ("annotator", "reviewer", "manager", "admin", "owner")
#: Expired assignments reclaimed per statement (the reaper loops).
RECLAIM_BATCH = 500
#: A literal, not a bound parameter: only then can the planners use the partial indexes.
ACTIVE: ColumnElement[str] = literal_column("'active'")


@dataclass(frozen=True, slots=True)
class LeasedTask:
    """What a lease hands the worker of its task (``tasks.serialize.task_for_worker``), read
    as one row without the ORM."""

    seq: int
    task_id: str
    project_id: str | None
    batch_id: str | None
    type: str
    status: str
    instruction: str | None
    params: dict[str, Any]
    rework: dict[str, Any] | None


@dataclass(frozen=True)
class Lease:
    assignment: Assignment
    task: LeasedTask
    #: The name of the task's project (the worker picks its queue by it).
    project_name: str | None = None
    #: Taken by this call (not a lease the worker already held): counted for the gold rate.
    fresh: bool = False


def check_worker(actor: Actor) -> str:
    if actor.kind != "user" or actor.user_id is None or actor.role not in WORKER_ROLES:
        raise Forbidden("Only signed-in workers can take tasks.")
    return actor.user_id


# Built once, run with their values: a next runs them for every task handed out (building and
# cache-keying a statement per call cost more than running it).
HELD = select(
    Assignment.id, Assignment.task_seq, Assignment.started_at, Assignment.expires_at
).where(
    Assignment.user_id == bindparam("p_user_id"),
    Assignment.status == ACTIVE,
    Assignment.org_id == bindparam("p_org_id"),
)
_WORKER_VIEW = (
    Task.seq,
    Task.task_id,
    Task.project_id,
    Task.batch_id,
    Task.type,
    Task.status,
    Task.instruction,
    Task.params,
    Task.rework,
)
_TASK_VIEW = select(*_WORKER_VIEW).where(Task.seq == bindparam("p_seq"))
#: The compare-and-set that takes a slot (see the module docstring).
_TAKE = (
    update(Task)
    .where(
        Task.seq == bindparam("p_seq"),
        Task.status == "pending",
        Task.leases_open + Task.labels_done < Task.labels_needed,
    )
    .values(leases_open=Task.leases_open + 1)
    .returning(*_WORKER_VIEW)
)
_INSERT_LEASE = text(
    "INSERT INTO assignments (id, org_id, task_seq, user_id, status, started_at, expires_at) "
    "VALUES (:id, :org_id, :task_seq, :user_id, 'active', :started_at, :expires_at) "
    "ON CONFLICT (user_id) WHERE status = 'active' DO NOTHING RETURNING id"
)
_RELEASE_SLOTS = (
    update(Task)
    .where(Task.seq == bindparam("s"))
    .values(leases_open=Task.leases_open - bindparam("n"))
)


def _held(session: Session, actor: Actor, user_id: str) -> Any:
    return (
        session.connection().execute(HELD, {"p_user_id": user_id, "p_org_id": actor.org_id}).first()
    )


def held_lease(session: Session, actor: Actor, user_id: str) -> Any:
    """The worker's active live assignment (``HELD``'s columns: ``id``, ``task_seq``,
    ``started_at``, ``expires_at``), if any (``quality_serving`` asks first)."""
    return _held(session, actor, user_id)


def expire(session: Session, assignment_ids: list[str]) -> None:
    """End the worker's expired ``assignment_ids`` (giving their slots back) before another
    kind of lease is taken (``quality_serving``)."""
    _end(session, assignment_ids, "expired")


def _task_view(session: Session, seq: int) -> LeasedTask | None:
    row = session.connection().execute(_TASK_VIEW, {"p_seq": seq}).first()
    return LeasedTask(*row) if row is not None else None


def _assignment(actor: Actor, user_id: str, row: Any) -> Assignment:
    """The active assignment ``row`` (``HELD``'s columns) as an object, not read back."""
    return Assignment(
        id=row.id,
        org_id=actor.org_id,
        task_seq=row.task_seq,
        user_id=user_id,
        status="active",
        started_at=row.started_at,
        expires_at=row.expires_at,
    )


def next_assignment(
    session: Session,
    actor: Actor,
    *,
    project_name: str | None,
    now: datetime,
    lease_seconds: float,
    exclude_projects: tuple[str, ...] = (),
) -> Lease | None:
    """The worker's active lease if live, else a new lease on a task that still needs a label
    from this worker, else ``None``. A lease held elsewhere is returned even when
    ``project_name`` names another project: a worker holds one lease at a time.
    ``exclude_projects``: projects the worker may not take live work from yet (qualification,
    ``workflow.quality_serving``)."""
    user_id = check_worker(actor)
    # The id only: a project's params (its whole history) are not decoded on the hot path.
    ref = projects.project_ref(session, actor, name=project_name) if project_name else None
    project_id = ref.id if ref is not None else None
    held = _held(session, actor, user_id)
    if held is not None:
        if held.expires_at > now:
            task = _task_view(session, held.task_seq)
            if task is not None and task.status == "pending":
                return _lease(session, actor, _assignment(actor, user_id, held), task, ref)
        # Expired, or its task ended (canceled): it gives its slot back before another is taken.
        _end(session, [held.id], "expired" if held.expires_at <= now else "released")
    statements = _candidates(
        session, actor, user_id, project_id, project_name or "", exclude_projects
    )
    expires = now + timedelta(seconds=lease_seconds)
    reclaimed = False
    conn = session.connection()
    for _attempt in range(CANDIDATES):
        seq = _first(session, statements)
        if seq is None:
            # Slots held by expired leases free up here too, not only when the reaper runs.
            if not reclaimed and reclaim_expired(session, now, org_id=actor.org_id) > 0:
                reclaimed = True
                continue
            return None
        taken = conn.execute(_TAKE, {"p_seq": seq}).first()
        if taken is None:
            continue
        assignment_id = new_id()
        inserted = conn.execute(
            _INSERT_LEASE,
            {
                "id": assignment_id,
                "org_id": actor.org_id,
                "task_seq": seq,
                "user_id": user_id,
                "started_at": now,
                "expires_at": expires,
            },
        ).first()
        if inserted is None:
            # The same worker's concurrent request took a lease first: give this slot back and
            # answer with that one.
            conn.execute(_RELEASE_SLOTS, {"s": seq, "n": 1})
            held = _held(session, actor, user_id)
            other = _task_view(session, held.task_seq) if held is not None else None
            if held is None or other is None:
                return None
            return _lease(session, actor, _assignment(actor, user_id, held), other, ref)
        # What was inserted, without reading it back (the answer needs no more).
        assignment = Assignment(
            id=assignment_id,
            org_id=actor.org_id,
            task_seq=seq,
            user_id=user_id,
            status="active",
            started_at=now,
            expires_at=expires,
        )
        return _lease(session, actor, assignment, LeasedTask(*taken), ref, fresh=True)
    return None


def _lease(
    session: Session,
    actor: Actor,
    assignment: Assignment,
    task: LeasedTask,
    ref: projects.ProjectRef | None,
    *,
    fresh: bool = False,
) -> Lease:
    """The lease with its project's name: the one asked for, else looked up."""
    if task.project_id is None:
        return Lease(assignment, task, fresh=fresh)
    if ref is not None and ref.id == task.project_id:
        return Lease(assignment, task, ref.name, fresh=fresh)
    try:
        name: str | None = projects.project_ref(session, actor, project_id=task.project_id).name
    except NotFound:
        # Not in the worker's scope (no task next hands out is): shown unnamed, as before,
        # rather than refusing the lease.
        name = None
    return Lease(assignment, task, name, fresh=fresh)


def _candidates(
    session: Session,
    actor: Actor,
    user_id: str,
    project_id: str | None,
    project_name: str = "",
    exclude_projects: tuple[str, ...] = (),
) -> list[tuple[Any, dict[str, Any]]]:
    """The candidate statements, in work order (``eligibility``): only tasks the worker may
    work on, prioritized batches first."""
    scope = eligibility.work_scope(session, actor, user_id, project_id, project_name)
    if exclude_projects:
        scope = eligibility.without_projects(scope, exclude_projects)
    return eligibility.candidates(session, actor, user_id, scope)


def _first(session: Session, statements: list[tuple[Any, dict[str, Any]]]) -> int | None:
    conn = session.connection()
    for stmt, params in statements:
        seq = conn.scalar(stmt, params)
        if seq is not None:
            return int(seq)
    return None


def _end(session: Session, ids: list[str], status: str, **values: Any) -> list[int]:
    """Move active assignments ``ids`` to ``status`` (compare-and-set on ``active``) and give
    their slots back; returns the task of each assignment that moved."""
    if not ids:
        return []
    seqs = list(
        session.execute(
            update(Assignment)
            .where(Assignment.id.in_(ids), Assignment.status == ACTIVE)
            .values(status=status, **values)
            .returning(Assignment.task_seq)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    counts = Counter(seqs)
    if counts:
        # In seq order: two transactions giving back slots lock tasks in the same order.
        session.connection().execute(
            _RELEASE_SLOTS, [{"s": s, "n": n} for s, n in sorted(counts.items())]
        )
    for assignment in session.identity_map.values():
        if isinstance(assignment, Assignment) and assignment.id in ids:
            session.expire(assignment)
    return seqs


def reclaim_expired(
    session: Session, now: datetime, *, org_id: str | None = None, limit: int = RECLAIM_BATCH
) -> int:
    """Expire up to ``limit`` active assignments whose lease ran out and free their slots."""
    stmt = (
        select(Assignment.id)
        .where(Assignment.status == ACTIVE, Assignment.expires_at <= now)
        .order_by(Assignment.expires_at)
        .limit(limit)
    )
    if org_id is not None:
        stmt = stmt.where(Assignment.org_id == org_id)
    ids = list(session.scalars(skip_locked(session, stmt)))
    return len(_end(session, ids, "expired"))


def anything_expired(session: Session, now: datetime) -> bool:
    """Whether ``reclaim_expired`` would find work (asked in a read transaction first)."""
    stmt = select(Assignment.id).where(Assignment.status == ACTIVE, Assignment.expires_at <= now)
    return session.scalar(stmt.limit(1)) is not None


def own_assignment(session: Session, actor: Actor, assignment_id: str) -> Assignment:
    """The caller's assignment ``assignment_id`` (404 for anyone else's)."""
    assignment = session.scalar(
        select(Assignment).where(
            Assignment.id == assignment_id,
            Assignment.org_id == actor.org_id,
            Assignment.user_id == (actor.user_id or ""),
        )
    )
    if assignment is None:
        raise no_assignment(assignment_id)
    return assignment


def no_assignment(assignment_id: str) -> NotFound:
    return NotFound(f"No assignment with id '{assignment_id}'.", field="assignment_id")


def not_active(assignment: Assignment | str) -> InvalidState:
    """The refusal for an assignment (or an assignment's status) that is no longer active;
    ``already_submitted`` for a submit the server already stored (a client's retry: done)."""
    status = assignment if isinstance(assignment, str) else assignment.status
    if status == "submitted":
        return AlreadySubmitted("This assignment is submitted.", field="assignment_id")
    return InvalidState(f"This assignment is {status}.", field="assignment_id")


def heartbeat(
    session: Session, actor: Actor, assignment_id: str, now: datetime, lease_seconds: float
) -> Assignment:
    """Extend the caller's active lease to ``now + lease_seconds``. A lease that ran out but
    was not reclaimed still holds its slot, so it can be extended too."""
    check_worker(actor)
    expires = now + timedelta(seconds=lease_seconds)
    row = session.execute(
        update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.org_id == actor.org_id,
            Assignment.user_id == (actor.user_id or ""),
            Assignment.status == ACTIVE,
        )
        .values(expires_at=expires)
        .returning(Assignment.id)
        .execution_options(synchronize_session=False)
    ).first()
    assignment = own_assignment(session, actor, assignment_id)
    session.refresh(assignment)
    if row is None:
        raise not_active(assignment)
    return assignment


def give_back(
    session: Session, actor: Actor, assignment_id: str, *, skip: bool, now: datetime
) -> Assignment:
    """Release the caller's active lease, or skip its task (never offered to them again)."""
    check_worker(actor)
    assignment = own_assignment(session, actor, assignment_id)
    moved = _end(
        session,
        [assignment.id],
        "skipped" if skip else "released",
        submitted_at=None,
        active_seconds=elapsed(assignment.started_at, now),
    )
    session.refresh(assignment)
    if not moved:
        raise not_active(assignment)
    return assignment


def elapsed(started: datetime, now: datetime) -> float:
    """Seconds a lease was held (never negative, should the clock step back)."""
    return max(0.0, (now - started).total_seconds())
