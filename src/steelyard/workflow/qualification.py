"""Qualification: where a worker stands in a project's training (``qualification_states``),
and the projects a worker may work on with that state (``worker_projects``).

An attempt passes when the worker has answered the required number of the project's training
tasks (``qualification.tasks``, else all of them; a project without training tasks requires
none) with a mean score of at least ``pass_mark``. Training items are served in creation order,
one at a time (``quality_serving``), so an attempt never holds more answers than required. A
project's ``quality_settings`` (the params' gold rate and qualification, copied at each
change) are what ``quality_projects`` reads, without decoding params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, false, func, select
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.projects.models import Project
from steelyard.projects.workflow_settings import Qualification, QualitySettings
from steelyard.tasks.models import QualityTask
from steelyard.workflow import eligibility, leases
from steelyard.workflow.models import QualityAnswer

TRAINING = "training"


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


#: The organization's live projects that have (or had) gold or qualification: a probe of the
#: partial index ``ix_projects_quality``, empty for most organizations. Built once and run on
#: the connection (Core): it runs on every ``next``, and the ORM's per-call statement building
#: was two thirds of its ~140 µs on SQLite. No ORDER BY: sorting by name in SQL made SQLite walk
#: the (org, env, name) index through every project row instead; the caller sorts.
QUALITY_PROJECTS = select(Project.id, Project.name, Project.type, Project.quality_settings).where(
    Project.org_id == bindparam("org_id"),
    Project.is_test == false(),
    Project.quality_settings.is_not(None),
)


def quality_projects(session: Session, actor: Actor) -> list[QualityProject]:
    """The organization's live projects that have (or had) gold or qualification, by name."""
    rows = session.connection().execute(QUALITY_PROJECTS, {"org_id": actor.org_id}).all()
    return sorted(
        (
            QualityProject(pid, name, type_name, QualitySettings.from_doc(doc))
            for pid, name, type_name, doc in rows
        ),
        key=lambda p: p.name,
    )


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
