"""A pause's life after it opens: the worker appeals, someone else decides.

``paused → appealed → lifted | upheld``; an operator may also lift a pause nobody appealed, and
lift an upheld one later (it stays blocking until then). Upholding needs an appeal: an operator
cannot close a pause before the worker has had their say. The decider is a person (a manager,
admin or owner signed in), never the paused worker; an API key cannot decide, since
``decided_by`` must name someone. Every transition is a compare-and-set on the status it
leaves (the one the decider saw), with its timestamp, so two deciders (or an appeal racing a
decision) cannot both win, and nobody decides on a state they did not see. Lifting an upheld
pause keeps the uphold in the evidence (``earlier_decisions``).

A lift restarts the worker's evidence window (``worker_quality.window_start``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from steelyard.accounts.models import User
from steelyard.accounts.schemas import Actor
from steelyard.errors import Forbidden, InvalidState, NotFound, ValidationError
from steelyard.projects.models import Project
from steelyard.timefmt import iso
from steelyard.workflow.models import WorkerPause

STATUSES = ("paused", "appealed", "lifted", "upheld")
DECIDERS = ("manager", "admin", "owner")
#: decision → (the states it may leave, the state it enters).
DECISIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "lift": (("paused", "appealed", "upheld"), "lifted"),
    "uphold": (("appealed",), "upheld"),
}
MAX_TEXT = 5000
MAX_LIST = 1000


def _text(value: Any, field: str, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"'{field}' is required: say why, in a few words.", field=field)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be a string.", field=field)
    if len(value) > MAX_TEXT:
        raise ValidationError(f"'{field}' is longer than {MAX_TEXT} characters.", field=field)
    return value.strip()


def _own_pause(session: Session, actor: Actor, pause_id: str) -> WorkerPause:
    pause = session.scalar(
        select(WorkerPause).where(
            WorkerPause.id == pause_id,
            WorkerPause.org_id == actor.org_id,
            WorkerPause.user_id == (actor.user_id or ""),
        )
    )
    if pause is None:
        raise NotFound(f"No pause with id '{pause_id}'.", field="pause_id")
    return pause


def appeal(session: Session, actor: Actor, pause_id: str, body: Any, now: datetime) -> WorkerPause:
    """The paused worker's appeal (``{"appeal": "why"}``) of their own pause."""
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object {appeal}.", field="body")
    reason = _text(body.get("appeal"), "appeal", required=True)
    if actor.is_test or actor.user_id is None or actor.kind != "user":
        raise NotFound(f"No pause with id '{pause_id}'.", field="pause_id")
    moved = session.execute(
        update(WorkerPause)
        .where(
            WorkerPause.id == pause_id,
            WorkerPause.org_id == actor.org_id,
            WorkerPause.user_id == actor.user_id,
            WorkerPause.status == "paused",
        )
        .values(status="appealed", appeal=reason, appealed_at=now)
        .returning(WorkerPause.id)
        .execution_options(synchronize_session=False)
    ).first()
    pause = _own_pause(session, actor, pause_id)
    session.refresh(pause)
    if moved is None:
        raise InvalidState(
            f"This pause is {pause.status}; only a pause not yet appealed can be appealed.",
            field="pause_id",
        )
    return pause


def decide(session: Session, actor: Actor, pause_id: str, body: Any, now: datetime) -> WorkerPause:
    """An operator's decision, ``{"decision": "lift" | "uphold", "comment": "..."}``; a comment
    is required to uphold (the worker is owed a reason)."""
    pause = _org_pause(session, actor, pause_id)
    if actor.kind != "user" or actor.user_id is None or actor.role not in DECIDERS:
        raise Forbidden(
            "A person decides on a pause: sign in as a manager, admin or owner.", field="pause_id"
        )
    if pause.user_id == actor.user_id:
        raise Forbidden(
            "Someone other than the paused worker must decide on their pause.", field="pause_id"
        )
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object {decision, comment}.", field="body")
    decision = body.get("decision")
    if decision not in DECISIONS:
        raise ValidationError("'decision' must be 'lift' or 'uphold'.", field="decision")
    comment = _text(body.get("comment"), "comment", required=decision == "uphold")
    leaves, enters = DECISIONS[decision]
    seen = pause.status
    if seen not in leaves:
        raise _undecidable(seen, decision, leaves)
    values: dict[str, Any] = {
        "status": enters,
        "decided_by": actor.user_id,
        "decided_at": now,
        "decision": comment,
    }
    if pause.decided_at is not None:
        # Lifting an upheld pause: the uphold stays on the record.
        evidence = dict(pause.evidence or {})
        evidence["earlier_decisions"] = [
            *evidence.get("earlier_decisions", []),
            {
                "status": seen,
                "decided_by": pause.decided_by,
                "decided_at": iso(pause.decided_at),
                "decision": pause.decision,
            },
        ]
        values["evidence"] = evidence
    # The status the decider saw, not any it may leave: a decision made on a pause that moved
    # meanwhile (say, upheld by someone else) is refused, to be made again knowingly.
    moved = session.execute(
        update(WorkerPause)
        .where(
            WorkerPause.id == pause.id,
            WorkerPause.org_id == actor.org_id,
            WorkerPause.status == seen,
        )
        .values(**values)
        .returning(WorkerPause.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(pause)
    if moved is None:
        raise _undecidable(pause.status, decision, leaves)
    return pause


def _undecidable(status: str, decision: str, leaves: tuple[str, ...]) -> InvalidState:
    return InvalidState(
        f"This pause is {status}; '{decision}' applies to a pause that is {' or '.join(leaves)}.",
        field="pause_id",
    )


def _org_pause(session: Session, actor: Actor, pause_id: str) -> WorkerPause:
    pause = None
    if not actor.is_test:  # pauses belong to the live environment, where workers work
        pause = session.scalar(
            select(WorkerPause).where(
                WorkerPause.id == pause_id, WorkerPause.org_id == actor.org_id
            )
        )
    if pause is None:
        raise NotFound(f"No pause with id '{pause_id}'.", field="pause_id")
    return pause


@dataclass(frozen=True, slots=True)
class PauseView:
    pause: WorkerPause
    project: str
    worker: str
    decided_by: str | None


def list_pauses(
    session: Session,
    actor: Actor,
    *,
    status: str | None = None,
    project_id: str | None = None,
    limit: int = 100,
) -> list[PauseView]:
    """The organization's pauses, newest first (the test environment has none)."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"'status' must be one of {', '.join(STATUSES)}.", field="status")
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
        raise ValidationError(f"'limit' must be from 1 to {MAX_LIST}.", field="limit")
    if actor.is_test:
        return []
    decider = aliased(User)
    stmt = (
        select(WorkerPause, Project.name, User.email, decider.email)
        .join(Project, Project.id == WorkerPause.project_id)
        .join(User, User.id == WorkerPause.user_id)
        .outerjoin(decider, decider.id == WorkerPause.decided_by)
        .where(WorkerPause.org_id == actor.org_id, Project.org_id == actor.org_id)
        .order_by(WorkerPause.created_at.desc(), WorkerPause.id)
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(WorkerPause.status == status)
    if project_id is not None:
        stmt = stmt.where(WorkerPause.project_id == project_id)
    return [PauseView(p, name, email, by) for p, name, email, by in session.execute(stmt)]


def names(session: Session, pause: WorkerPause) -> tuple[str, str, str | None]:
    """The pause's project name, worker email and decider email (for one pause's answer)."""
    project = session.scalar(select(Project.name).where(Project.id == pause.project_id))
    worker = session.scalar(select(User.email).where(User.id == pause.user_id))
    decider = None
    if pause.decided_by is not None:
        decider = session.scalar(select(User.email).where(User.id == pause.decided_by))
    return str(project), str(worker), decider
