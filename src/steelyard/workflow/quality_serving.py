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

from sqlalchemy import case, exists, false, func, select, text, update
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.errors import Forbidden, InvalidState, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Project
from steelyard.projects.workflow_settings import Qualification, QualitySettings
from steelyard.quality import gold_scores
from steelyard.tasks.models import QualityTask
from steelyard.tasktypes import registry
from steelyard.validation import under
from steelyard.workflow import eligibility, leases
from steelyard.workflow.models import GoldCount, QualityAnswer

EVALUATION = "evaluation"
TRAINING = "training"
#: Evaluation candidates read per gold lease, one picked at random (workers do not all meet
#: the same gold in the same order).
GOLD_CANDIDATES = 32


@dataclass(frozen=True, slots=True)
class QualityProject:
    id: str
    name: str
    type: str
    settings: QualitySettings


@dataclass(frozen=True, slots=True)
class QualificationState:
    """Where a worker stands in a project's qualification (``attempt`` is the current one)."""

    required: int
    answered: int
    score: float | None
    status: str  # not_started | in_progress | passed | failed
    attempt: int
    attempts_left: int
    pass_mark: float

    def to_doc(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "answered": self.answered,
            "score": self.score,
            "status": self.status,
            "attempt": self.attempt,
            "attempts_left": self.attempts_left,
            "pass_mark": self.pass_mark,
        }


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


# --- which projects, and the worker lock ---------------------------------------------------


def quality_projects(session: Session, actor: Actor) -> list[QualityProject]:
    """The organization's live projects that have (or had) gold or qualification."""
    rows = session.execute(
        select(Project.id, Project.name, Project.type, Project.quality_settings)
        .where(
            Project.org_id == actor.org_id,
            Project.is_test == false(),
            Project.quality_settings.is_not(None),
        )
        .order_by(Project.name)
    ).all()
    return [
        QualityProject(pid, name, type_name, QualitySettings.from_doc(doc))
        for pid, name, type_name, doc in rows
    ]


def _lock_worker(session: Session, user_id: str) -> None:
    """Serialise one worker's ``next`` calls (PostgreSQL; SQLite serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"next:{user_id}".encode()).digest()[:8], "big")
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key - (1 << 63)})


def shown_task_id(item: QualityTask, user_id: str) -> str:
    """A quality item's ``task_id`` for one worker: shaped like a live id (creation time, then
    hex), different per worker, and telling nothing of the item."""
    digest = hashlib.sha256(f"{item.id}:{user_id}".encode()).hexdigest()[:16]
    return f"{int(item.created_at.timestamp()):08x}{digest}"


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
        _end(session, [held.id], "expired" if held.expires_at <= now else "released")
    live_held = leases.held_lease(session, actor, user_id)
    if live_held is not None and live_held.expires_at > now:
        return leases.next_assignment(
            session, actor, project_name=project_name, now=now, lease_seconds=lease_seconds
        )
    project_id = None
    if project_name:
        project_id = projects.project_ref(session, actor, name=project_name).id
    scope = eligibility.work_scope(session, actor, user_id, project_id, project_name or "")
    blocked = set(scope.blocked_projects)
    mine = [p for p in found if p.id not in blocked and project_id in (None, p.id)]
    expires = now + timedelta(seconds=lease_seconds)
    qualifying = [p for p in mine if p.settings.qualification is not None]
    states = qualification_states(session, actor, user_id, qualifying)
    unqualified = tuple(p.id for p in qualifying if states[p.id].status != "passed")
    for p in qualifying:
        state = states[p.id]
        attempt = _serving_attempt(state, named=project_id == p.id)
        if attempt is None:
            continue
        lease = _lease_training(session, actor, user_id, p, attempt, state, now, expires)
        if lease is not None:
            return lease
    if project_id is not None and project_id in unqualified:
        state = states[project_id]
        if state.status == "failed":
            raise Forbidden(
                f"You did not pass the qualification for project '{project_name}' "
                f"(score {state.score:.2f}, pass mark {state.pass_mark:.2f}) and have no "
                "attempts left.",
                field="project",
            )
        return None
    gold = [p for p in mine if p.settings.gold_rate > 0 and p.id not in unqualified]
    counts = _counts(session, user_id, [p.id for p in gold])
    for p in gold:
        live, served_gold = counts.get(p.id, (0, 0))
        if not gold_due(p.settings.gold_rate, live + served_gold, _phase(user_id, p.id)):
            continue
        if not _live_work(session, actor, user_id, p.id):
            continue
        lease = _lease_evaluation(session, actor, user_id, p, now, expires)
        if lease is not None:
            _count(session, actor, user_id, p.id, gold=True)
            return lease
        # No evaluation task left for this worker: the slot passes to live work.
    live_lease = leases.next_assignment(
        session,
        actor,
        project_name=project_name,
        now=now,
        lease_seconds=lease_seconds,
        exclude_projects=unqualified,
    )
    if live_lease is not None and live_lease.task.project_id in {p.id for p in gold}:
        _count(session, actor, user_id, live_lease.task.project_id or "", gold=False)
    return live_lease


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
    params = projects.project_defaults(session, actor, project_id=project.id).params
    instruction = params.get("instruction")
    return QualityLease(
        answer,
        item,
        project.name,
        shown_task_id(item, answer.user_id),
        instruction if isinstance(instruction, str) else None,
        state,
    )


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


# --- qualification state -------------------------------------------------------------------


def qualification_states(
    session: Session, actor: Actor, user_id: str, found: list[QualityProject]
) -> dict[str, QualificationState]:
    """The worker's state in each project's qualification (projects without one: left out),
    in two grouped reads."""
    qualifying = {p.id: p.settings.qualification for p in found if p.settings.qualification}
    if not qualifying:
        return {}
    ids = sorted(qualifying)
    available: dict[str, int] = {
        pid: int(n)
        for pid, n in session.execute(
            select(QualityTask.project_id, func.count())
            .where(
                QualityTask.project_id.in_(ids),
                QualityTask.kind == TRAINING,
                QualityTask.is_test == false(),
                QualityTask.org_id == actor.org_id,
            )
            .group_by(QualityTask.project_id)
        ).all()
    }
    submitted = QualityAnswer.status == "submitted"
    rows = session.execute(
        select(
            QualityAnswer.project_id,
            QualityAnswer.attempt,
            func.count(case((submitted, 1))),
            func.sum(case((submitted, QualityAnswer.score), else_=0.0)),
        )
        .where(
            QualityAnswer.project_id.in_(ids),
            QualityAnswer.user_id == user_id,
            QualityAnswer.kind == TRAINING,
        )
        .group_by(QualityAnswer.project_id, QualityAnswer.attempt)
    ).all()
    attempts: dict[str, dict[int, tuple[int, float]]] = {pid: {} for pid in ids}
    for pid, attempt, n, total in rows:
        attempts[pid][int(attempt)] = (int(n), float(total or 0.0))
    return {
        pid: qualification_state(q, int(available.get(pid, 0)), attempts[pid])
        for pid, q in qualifying.items()
    }


def qualification_state(
    q: Qualification, available: int, attempts: dict[int, tuple[int, float]]
) -> QualificationState:
    """The state from the project's training tasks (``available``) and the worker's attempts
    (attempt → answers submitted, their total score). Passed when an attempt reached
    ``pass_mark`` over the required answers; a project with no training task requires none."""
    required = min(q.tasks, available) if q.tasks is not None else available
    for attempt, (n, total) in sorted(attempts.items()):
        if n >= required and (required == 0 or total / n >= q.pass_mark):
            score = total / n if n else None
            return QualificationState(
                required, n, score, "passed", attempt, q.max_attempts - attempt, q.pass_mark
            )
    if required == 0:
        return QualificationState(0, 0, None, "passed", 1, q.max_attempts - 1, q.pass_mark)
    current = max(attempts) if attempts else 1
    n, total = attempts.get(current, (0, 0.0))
    score = total / n if n else None
    left = q.max_attempts - current
    status = "failed" if n >= required else "in_progress" if attempts else "not_started"
    return QualificationState(required, n, score, status, current, left, q.pass_mark)


# --- heartbeat, release, skip, reaper -------------------------------------------------------


def own_answer(session: Session, actor: Actor, answer_id: str) -> QualityAnswer:
    """The caller's quality lease ``answer_id``; the same 404 as for an unknown assignment."""
    answer = session.scalar(
        select(QualityAnswer).where(
            QualityAnswer.id == answer_id,
            QualityAnswer.org_id == actor.org_id,
            QualityAnswer.user_id == (actor.user_id or ""),
        )
    )
    if answer is None:
        raise NotFound(f"No assignment with id '{answer_id}'.", field="assignment_id")
    return answer


def _not_active(answer: QualityAnswer) -> InvalidState:
    return InvalidState(f"This assignment is {answer.status}.", field="assignment_id")


def _end(session: Session, ids: list[str], status: str, **values: Any) -> int:
    if not ids:
        return 0
    moved = session.execute(
        update(QualityAnswer)
        .where(QualityAnswer.id.in_(ids), QualityAnswer.status == leases.ACTIVE)
        .values(status=status, **values)
        .returning(QualityAnswer.id)
        .execution_options(synchronize_session=False)
    ).all()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, QualityAnswer) and obj.id in ids:
            session.expire(obj)
    return len(moved)


def heartbeat(
    session: Session, actor: Actor, answer_id: str, now: datetime, lease_seconds: float
) -> QualityAnswer:
    leases.check_worker(actor)
    answer = own_answer(session, actor, answer_id)
    if answer.status != "active":
        raise _not_active(answer)
    answer.expires_at = now + timedelta(seconds=lease_seconds)
    session.flush()
    return answer


def give_back(
    session: Session, actor: Actor, answer_id: str, *, skip: bool, now: datetime
) -> QualityAnswer:
    """Release a quality lease (the item may come back), or skip it: an evaluation item is then
    never served to the worker again; a training item cannot be skipped (the qualification
    needs its answers), only released."""
    leases.check_worker(actor)
    answer = own_answer(session, actor, answer_id)
    if skip and answer.kind == TRAINING and answer.status == "active":
        raise InvalidState(
            "A training task cannot be skipped; release it to come back to it later.",
            field="assignment_id",
        )
    moved = _end(
        session,
        [answer.id],
        "skipped" if skip else "released",
        active_seconds=leases.elapsed(answer.started_at, now),
    )
    session.refresh(answer)
    if not moved:
        raise _not_active(answer)
    return answer


def reclaim_expired(session: Session, now: datetime, *, limit: int = leases.RECLAIM_BATCH) -> int:
    """Expire up to ``limit`` quality leases that ran out (they hold no shared slot; this only
    frees the worker's one lease and keeps the statuses true)."""
    ids = list(
        session.scalars(
            select(QualityAnswer.id)
            .where(QualityAnswer.status == leases.ACTIVE, QualityAnswer.expires_at <= now)
            .order_by(QualityAnswer.expires_at)
            .limit(limit)
        )
    )
    return _end(session, ids, "expired")


def anything_expired(session: Session, now: datetime) -> bool:
    stmt = select(QualityAnswer.id).where(
        QualityAnswer.status == leases.ACTIVE, QualityAnswer.expires_at <= now
    )
    return session.scalar(stmt.limit(1)) is not None


# --- submit --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QualityTarget:
    """What a quality answer is checked and scored against, read before the write."""

    answer_id: str
    kind: str
    type: str
    params: dict[str, Any]
    expected: dict[str, Any]
    project_id: str
    #: The status a live label of this project answers with (``completed`` with one label per
    #: task, else ``pending``): what an evaluation submit says too.
    live_status: str


@dataclass(frozen=True, slots=True)
class QualitySubmission:
    answer_id: str
    kind: str
    response: dict[str, Any]
    score: float
    correct: bool
    expected: dict[str, Any]
    project_id: str
    live_status: str


def submit_target(
    session: Session, actor: Actor, answer_id: str, body: Any, now: datetime
) -> QualityTarget:
    """Read (a read transaction) the caller's quality lease and its item."""
    answer = own_answer(session, actor, answer_id)
    if answer.status != "active":
        raise _not_active(answer)
    item = session.get(QualityTask, answer.quality_task_id)
    if item is None:
        raise NotFound(f"No assignment with id '{answer_id}'.", field="assignment_id")
    workflow = projects.project_defaults(session, actor, project_id=answer.project_id).workflow
    live_status = "completed" if workflow.redundancy.max_labels == 1 else "pending"
    return QualityTarget(
        answer.id,
        answer.kind,
        item.type,
        item.params or {},
        item.expected_response,
        answer.project_id,
        live_status,
    )


def check_submission(target: QualityTarget, body: Any) -> QualitySubmission:
    """Check the response against the item's params and score it against the expected one:
    pure, run with no transaction open."""
    if not isinstance(body, dict) or "response" not in body:
        raise ValidationError('The body must be {"response": {...}}.', field="response")
    spec = registry.get(target.type)
    try:
        response = spec.validate_response(target.params, body["response"])
    except ValidationError as exc:
        raise under("response", exc) from None
    value = gold_scores.score(spec.scorer, response, target.expected)
    return QualitySubmission(
        target.answer_id,
        target.kind,
        response,
        value,
        gold_scores.is_correct(spec.scorer, value),
        target.expected,
        target.project_id,
        target.live_status,
    )


@dataclass(frozen=True, slots=True)
class QualityResult:
    answer: QualityAnswer
    submission: QualitySubmission
    #: For a training answer, the qualification after it.
    qualification: QualificationState | None


def submit(
    session: Session, actor: Actor, submission: QualitySubmission, now: datetime
) -> QualityResult:
    """Store a checked, scored answer (compare-and-set on the lease being active)."""
    leases.check_worker(actor)
    answer = own_answer(session, actor, submission.answer_id)
    values = {
        "status": "submitted",
        "submitted_at": now,
        "active_seconds": leases.elapsed(answer.started_at, now),
        "response": submission.response,
        "score": submission.score,
        "correct": submission.correct,
    }
    if answer.kind == EVALUATION:
        stored = store_evaluation_answer(session, actor, answer, values)
    else:
        stored = _store(session, answer, values)
    if not stored:
        session.refresh(answer)
        raise _not_active(answer)
    state = None
    if answer.kind == TRAINING:
        found = [p for p in quality_projects(session, actor) if p.id == answer.project_id]
        state = qualification_states(session, actor, answer.user_id, found).get(answer.project_id)
    return QualityResult(answer, submission, state)


def store_evaluation_answer(
    session: Session, actor: Actor, answer: QualityAnswer, values: dict[str, Any]
) -> bool:
    """The one place a worker's evaluation (hidden gold) answer is stored, scored
    (``values``: response, score, correct, status ``submitted``). Worker quality (accuracy on
    gold, pause below the project's threshold) hooks in here, in the same transaction, after
    the row is stored. False when the lease was no longer active."""
    return _store(session, answer, values)


def _store(session: Session, answer: QualityAnswer, values: dict[str, Any]) -> bool:
    moved = session.execute(
        update(QualityAnswer)
        .where(QualityAnswer.id == answer.id, QualityAnswer.status == leases.ACTIVE)
        .values(**values)
        .returning(QualityAnswer.id)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        return False
    session.expire(answer)
    session.refresh(answer)
    return True


# --- the worker's projects -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerProject:
    name: str
    type: str
    qualification: QualificationState | None


def worker_projects(session: Session, actor: Actor) -> list[WorkerProject]:
    """The live projects the worker may work on (Studio assignments), by name, each with their
    qualification state (``None``: the project has none)."""
    user_id = leases.check_worker(actor)
    blocked_stmt, _ = eligibility.scope_statements(actor, user_id, None)
    blocked = set(session.scalars(blocked_stmt))
    rows = session.execute(
        select(Project.id, Project.name, Project.type, Project.quality_settings)
        .where(
            Project.org_id == actor.org_id,
            Project.is_test == false(),
            Project.archived == false(),
        )
        .order_by(Project.name)
    ).all()
    found = [
        QualityProject(pid, name, type_name, QualitySettings.from_doc(doc))
        for pid, name, type_name, doc in rows
        if pid not in blocked
    ]
    states = qualification_states(session, actor, user_id, found)
    return [WorkerProject(p.name, p.type, states.get(p.id)) for p in found]


__all__ = [
    "QualificationState",
    "QualityLease",
    "QualityResult",
    "QualitySubmission",
    "QualityTarget",
    "WorkerProject",
    "anything_expired",
    "check_submission",
    "give_back",
    "gold_due",
    "heartbeat",
    "next_item",
    "own_answer",
    "qualification_state",
    "reclaim_expired",
    "shown_task_id",
    "store_evaluation_answer",
    "submit",
    "submit_target",
    "worker_projects",
]
