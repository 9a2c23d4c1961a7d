"""Gold and qualification served through the workers' ``next``/``submit`` routes.

A project's ``gold_rate`` and ``qualification`` (params, ``projects.workflow_settings``) are
copied to ``projects.quality_settings``; ``next_item`` reads the organization's projects that
have them (one probe of a partial index) and, when there are none, is the live path
(``leases.next_assignment``) and nothing more. Otherwise, for the worker, under a per-worker
lock (below):

1. a quality lease they hold (``quality_answers``, status ``active``) is returned, as a live
   one would be; a live lease they hold is returned by the live path;
2. **qualification**: for each project in their scope whose qualification they have not
   passed, the next training task of their current attempt (in creation order, one at a
   time); those projects' live tasks stay out of their scope (``eligibility.without_projects``)
   until they pass. A failed attempt is retaken (attempt + 1) when the worker asks for that
   project by name (``?project=``) and has attempts left; with none left, naming the project
   is a 403 saying so;
3. **gold**: for each project with a gold rate r where they have live work to do right now,
   whether their next item there is gold is decided from their counts alone (``gold_due``):
   with n items served to them in the project so far, item n + 1 is gold when
   ``floor(r (n + 1) + φ) > floor(r n + φ)``, φ in [0, 1) a hash of (worker, project). Over any
   run of items the share of gold is r to within one item, the positions differ between
   workers, and a slot with no evaluation task left to serve passes to live work. An
   evaluation task is answered (or skipped) at most once per worker;
4. otherwise the live path, and the live item is counted for its project when it has a gold
   rate.

One lease per worker across live and quality items: each table has its partial unique index on
the worker's active row, and the two are tied by serialising a worker's ``next`` calls: SQLite
serialises every writer (``BEGIN IMMEDIATE``), PostgreSQL takes a transaction-scoped advisory
lock on the worker (``pg_advisory_xact_lock``) before looking, in the organizations with gold
or qualification (elsewhere no quality lease can be taken, so the live index suffices).

The worker sees a quality item exactly as a live one: the same view
(``tasks.serialize.quality_task_for_worker``), a ``task_id`` of the same shape derived from
(item, worker) so that workers comparing ids learn nothing, the same submit answer (the status a
live label of that project would get, no score). Training items are not hidden: their submit
adds the feedback (expected answer, score, correct) and the qualification's state.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, false, func, literal_column, select, text, update
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.errors import Forbidden
from steelyard.projects import service as projects
from steelyard.projects.models import Project
from steelyard.tasks.models import QualityTask
from steelyard.workflow import eligibility, leases
from steelyard.workflow.models import GoldCount, QualityAnswer
from steelyard.workflow.qualification import (
    TRAINING,
    QualificationState,
    QualityProject,
    qualification_states,
    quality_projects,
)
from steelyard.workflow.quality_answers import EVALUATION, end_answers, shown_task_id

#: Evaluation candidates read per gold lease, one picked at random (workers do not all meet
#: the same gold in the same order).
GOLD_CANDIDATES = 32


@dataclass(frozen=True, slots=True)
class QualityLease:
    """A worker's lease on an evaluation or training task, as ``next`` hands it out."""

    answer: QualityAnswer
    item: QualityTask
    project_name: str
    #: The ``task_id`` the worker sees (``shown_task_id``).
    task_id: str
    instruction: str | None
    #: The qualification's state, for a training item (shown: training is not hidden).
    qualification: QualificationState | None = None


# --- the worker lock and the gold slots ----------------------------------------------------


def _lock_worker(session: Session, user_id: str) -> None:
    """Serialise one worker's ``next`` calls (PostgreSQL; SQLite serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"next:{user_id}".encode()).digest()[:8], "big")
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key - (1 << 63)})


def _phase(user_id: str, project_id: str) -> float:
    digest = hashlib.sha256(f"gold:{project_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def gold_due(rate: float, served: int, phase: float) -> bool:
    """Whether item ``served + 1`` of a worker in a project with gold rate ``rate`` is gold:
    the gold slots are where ``floor(rate * n + phase)`` steps up, so any ``m`` consecutive
    items hold ``rate * m`` gold slots to within one."""
    if rate <= 0:
        return False
    return math.floor(rate * (served + 1) + phase) > math.floor(rate * served + phase)


# --- next ----------------------------------------------------------------------------------


def next_item(
    session: Session,
    actor: Actor,
    *,
    project_name: str | None,
    now: datetime,
    lease_seconds: float,
) -> leases.Lease | QualityLease | None:
    """``leases.next_assignment``, with gold and qualification where the organization has
    them (see the module's docstring)."""
    user_id = leases.check_worker(actor)
    found = quality_projects(session, actor)
    if not found:
        return leases.next_assignment(
            session, actor, project_name=project_name, now=now, lease_seconds=lease_seconds
        )
    _lock_worker(session, user_id)
    held = _held_answer(session, actor, user_id)
    if held is not None:
        if held.expires_at > now:
            lease = _lease_of(session, actor, held, found)
            if lease is not None:
                return lease
        end_answers(session, [held.id], "expired" if held.expires_at <= now else "released")
    project_id = None
    if project_name:
        project_id = projects.project_ref(session, actor, name=project_name).id
    wanted = [p for p in found if project_id in (None, p.id)]
    gold = [p for p in wanted if p.settings.gold_rate > 0]
    counts = _counts(session, user_id, [p.id for p in gold])
    due = [p for p in gold if _due(p, user_id, counts)]
    qualifying = [p for p in wanted if p.settings.qualification is not None]
    first = _First(None, ())
    if due or qualifying:
        # Something other than live work may come next: only now is the rest read (most
        # calls, with no gold slot due and no qualification, go straight to the live path).
        first = _quality_first(
            session, actor, user_id, project_id, project_name, qualifying, due, now, lease_seconds
        )
        if first.stop or isinstance(first.lease, QualityLease):
            return first.lease
    live_lease = first.lease or leases.next_assignment(
        session,
        actor,
        project_name=project_name,
        now=now,
        lease_seconds=lease_seconds,
        exclude_projects=first.unqualified,
    )
    fresh = isinstance(live_lease, leases.Lease) and live_lease.fresh
    live_project = live_lease.task.project_id if isinstance(live_lease, leases.Lease) else None
    if fresh and live_project in {p.id for p in gold}:
        _count(session, actor, user_id, live_project or "", gold=False)
    return live_lease


def _due(project: QualityProject, user_id: str, counts: dict[str, tuple[int, int]]) -> bool:
    live, served_gold = counts.get(project.id, (0, 0))
    return gold_due(project.settings.gold_rate, live + served_gold, _phase(user_id, project.id))


@dataclass(frozen=True, slots=True)
class _First:
    """What comes before the live path: a lease (a quality one, or the live one held), the
    projects the worker is not qualified for, and whether to stop there (``lease`` or none)."""

    lease: leases.Lease | QualityLease | None
    unqualified: tuple[str, ...]
    stop: bool = False


def _quality_first(
    session: Session,
    actor: Actor,
    user_id: str,
    project_id: str | None,
    project_name: str | None,
    qualifying: list[QualityProject],
    due: list[QualityProject],
    now: datetime,
    lease_seconds: float,
) -> _First:
    """A held live lease, a training item, or a gold item, if one comes before live work;
    with the projects the worker is not qualified for."""
    live_held = leases.held_lease(session, actor, user_id)
    if live_held is not None:
        if live_held.expires_at > now:
            held = leases.next_assignment(
                session, actor, project_name=project_name, now=now, lease_seconds=lease_seconds
            )
            return _First(held, (), stop=held is None)
        leases.expire(session, [live_held.id])
    scope = eligibility.work_scope(session, actor, user_id, project_id, project_name or "")
    blocked = set(scope.blocked_projects)
    qualifying = [p for p in qualifying if p.id not in blocked]
    expires = now + timedelta(seconds=lease_seconds)
    states = qualification_states(session, actor, user_id, qualifying)
    unqualified = tuple(p.id for p in qualifying if states[p.id].status != "passed")
    for p in qualifying:
        state = states[p.id]
        attempt = _serving_attempt(state, named=project_id == p.id)
        if attempt is None:
            continue
        lease = _lease_training(session, actor, user_id, p, attempt, state, now, expires)
        if lease is not None:
            return _First(lease, unqualified)
    if project_id is not None and project_id in unqualified:
        state = states[project_id]
        if state.status == "failed":
            raise Forbidden(
                f"You did not pass the qualification for project '{project_name}' "
                f"(score {state.score or 0.0:.2f}, pass mark {state.pass_mark:.2f}) and have "
                "no attempts left.",
                field="project",
            )
        return _First(None, unqualified, stop=True)
    for p in due:
        if p.id in blocked or p.id in unqualified:
            continue
        if not _live_work(session, actor, user_id, p.id):
            continue
        lease = _lease_evaluation(session, actor, user_id, p, now, expires)
        if lease is not None:
            _count(session, actor, user_id, p.id, gold=True)
            return _First(lease, unqualified)
        # No evaluation task left for this worker: the slot passes to live work.
    return _First(None, unqualified)


def _serving_attempt(state: QualificationState, *, named: bool) -> int | None:
    """The attempt to serve a training item of, or ``None``."""
    if state.status in ("not_started", "in_progress"):
        return state.attempt
    if state.status == "failed" and named and state.attempts_left > 0:
        return state.attempt + 1
    return None


def _held_answer(session: Session, actor: Actor, user_id: str) -> QualityAnswer | None:
    return session.scalar(
        select(QualityAnswer).where(
            QualityAnswer.user_id == user_id,
            QualityAnswer.status == leases.ACTIVE,
            QualityAnswer.org_id == actor.org_id,
        )
    )


def _lease_of(
    session: Session, actor: Actor, answer: QualityAnswer, found: list[QualityProject]
) -> QualityLease | None:
    item = session.get(QualityTask, answer.quality_task_id)
    project = next((p for p in found if p.id == answer.project_id), None)
    if item is None or project is None:
        return None
    state = None
    if answer.kind == TRAINING:
        state = qualification_states(session, actor, answer.user_id, [project])[project.id]
    return _lease(session, actor, answer, item, project, state)


def _lease(
    session: Session,
    actor: Actor,
    answer: QualityAnswer,
    item: QualityTask,
    project: QualityProject,
    state: QualificationState | None,
) -> QualityLease:
    instruction = session.scalar(
        select(_instruction(session.get_bind().dialect.name)).where(
            Project.id == project.id, Project.org_id == actor.org_id
        )
    )
    return QualityLease(
        answer,
        item,
        project.name,
        shown_task_id(item, answer.user_id),
        instruction if isinstance(instruction, str) else None,
        state,
    )


def _instruction(dialect: str) -> Any:
    """The project's current instruction, read in SQL: a live task shows its project's, and so
    must gold; the params history is not decoded in the write transaction."""
    history: Any = Project.param_history
    if dialect == "postgresql":
        entry = history.op("->")(literal_column("-1")).op("->>")(literal_column("'instruction'"))
        return entry
    return func.json_extract(history, "$[#-1].instruction")


def _open_items(user_id: str, project_id: str, kind: str, attempt: int) -> Any:
    """The project's ``kind`` items the worker has not answered, skipped or leased in
    ``attempt`` (released and expired ones may be served again)."""
    taken = exists().where(
        QualityAnswer.quality_task_id == QualityTask.id,
        QualityAnswer.user_id == user_id,
        QualityAnswer.attempt == attempt,
        QualityAnswer.status.in_(("submitted", "skipped", "active")),
    )
    return select(QualityTask).where(
        QualityTask.project_id == project_id,
        QualityTask.kind == kind,
        QualityTask.is_test == false(),
        ~taken,
    )


def _lease_training(
    session: Session,
    actor: Actor,
    user_id: str,
    project: QualityProject,
    attempt: int,
    state: QualificationState,
    now: datetime,
    expires: datetime,
) -> QualityLease | None:
    item = session.scalar(
        _open_items(user_id, project.id, TRAINING, attempt)
        .order_by(QualityTask.created_at, QualityTask.id)
        .limit(1)
    )
    if item is None:
        return None
    answer = _take(session, actor, user_id, item, attempt, now, expires)
    if answer is None:
        return None
    if attempt != state.attempt:
        state = qualification_states(session, actor, user_id, [project])[project.id]
    return _lease(session, actor, answer, item, project, state)


def _lease_evaluation(
    session: Session,
    actor: Actor,
    user_id: str,
    project: QualityProject,
    now: datetime,
    expires: datetime,
) -> QualityLease | None:
    items = list(
        session.scalars(
            _open_items(user_id, project.id, EVALUATION, 1)
            .order_by(QualityTask.id)
            .limit(GOLD_CANDIDATES)
        )
    )
    if not items:
        return None
    item = random.choice(items)
    answer = _take(session, actor, user_id, item, 1, now, expires)
    return None if answer is None else _lease(session, actor, answer, item, project, None)


_INSERT_ANSWER = text(
    "INSERT INTO quality_answers (id, org_id, project_id, quality_task_id, user_id, kind, "
    "attempt, status, started_at, expires_at) VALUES (:id, :org_id, :project_id, :item, "
    ":user_id, :kind, :attempt, 'active', :now, :expires) ON CONFLICT DO NOTHING RETURNING id"
)


def _take(
    session: Session,
    actor: Actor,
    user_id: str,
    item: QualityTask,
    attempt: int,
    now: datetime,
    expires: datetime,
) -> QualityAnswer | None:
    """A lease on ``item``: its released or expired row taken up again under a fresh id (as a
    live task gets a fresh assignment), else a new row; ``None`` if the worker's active row
    or this item's row is there already (their concurrent request; not expected under the
    worker lock)."""
    answer_id = new_id()
    values = {"status": "active", "started_at": now, "expires_at": expires}
    revived = session.execute(
        update(QualityAnswer)
        .where(
            QualityAnswer.quality_task_id == item.id,
            QualityAnswer.user_id == user_id,
            QualityAnswer.attempt == attempt,
            QualityAnswer.status.in_(("released", "expired")),
        )
        .values(id=answer_id, active_seconds=None, **values)
        .returning(QualityAnswer.id)
        .execution_options(synchronize_session=False)
    ).first()
    if revived is None:
        inserted = session.execute(
            _INSERT_ANSWER,
            {
                "id": answer_id,
                "org_id": actor.org_id,
                "project_id": item.project_id,
                "item": item.id,
                "user_id": user_id,
                "kind": item.kind,
                "attempt": attempt,
                "now": now,
                "expires": expires,
            },
        ).first()
        if inserted is None:
            return None
    return QualityAnswer(
        id=answer_id,
        org_id=actor.org_id,
        project_id=item.project_id,
        quality_task_id=item.id,
        user_id=user_id,
        kind=item.kind,
        attempt=attempt,
        **values,
    )


def _live_work(session: Session, actor: Actor, user_id: str, project_id: str) -> bool:
    scope = eligibility.work_scope(session, actor, user_id, project_id)
    return eligibility.has_work(session, actor, user_id, scope)


def _counts(session: Session, user_id: str, project_ids: list[str]) -> dict[str, tuple[int, int]]:
    if not project_ids:
        return {}
    rows = session.execute(
        select(GoldCount.project_id, GoldCount.live_served, GoldCount.gold_served).where(
            GoldCount.user_id == user_id, GoldCount.project_id.in_(project_ids)
        )
    )
    return {pid: (live, gold) for pid, live, gold in rows}


_BUMP = {
    False: text(
        "INSERT INTO gold_counts (project_id, user_id, org_id, live_served, gold_served) "
        "VALUES (:p, :u, :o, 1, 0) ON CONFLICT (project_id, user_id) "
        "DO UPDATE SET live_served = gold_counts.live_served + 1"
    ),
    True: text(
        "INSERT INTO gold_counts (project_id, user_id, org_id, live_served, gold_served) "
        "VALUES (:p, :u, :o, 0, 1) ON CONFLICT (project_id, user_id) "
        "DO UPDATE SET gold_served = gold_counts.gold_served + 1"
    ),
}


def _count(session: Session, actor: Actor, user_id: str, project_id: str, *, gold: bool) -> None:
    session.execute(_BUMP[gold], {"p": project_id, "u": user_id, "o": actor.org_id})
