"""The sweep: piece-rate entries for completed work, written idempotently by the work's id.

Completed work is a submitted label (paid whether or not it is later rejected: a rejection
supersedes the label, it does not unpay it), a submitted gold or training answer, and a
decided review. The sweep reads it after the fact, so the submit path writes nothing for pay;
the unique source index (type, kind, id, worker) makes a second sweep, or two at once, pay
nothing twice. Only projects with ``params.pay`` are swept, and only in the live environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from steelyard.errors import ValidationError
from steelyard.pay import rules
from steelyard.pay.ledger import NewEntry, OrgPay, post
from steelyard.pay.models import PIECE_RATE, PayEntry, PayPeriod
from steelyard.projects import pay_settings
from steelyard.projects.models import Project, current_params
from steelyard.projects.pay_settings import PaySettings
from steelyard.tasks.models import Task
from steelyard.workflow.models import Assignment, Label, QualityAnswer, Review

DECIDED_REVIEWS = ("accepted", "fixed", "rejected")


@dataclass(frozen=True, slots=True)
class PaidProject:
    id: str
    name: str
    #: (in force from, settings), oldest first.
    versions: tuple[tuple[datetime, PaySettings | None], ...]

    def at(self, moment: datetime) -> PaySettings | None:
        """The pay settings in force when the work was completed."""
        current = self.versions[0][1]
        for since, value in self.versions:
            if since <= moment:
                current = value
        return current


def _versions(history: list[dict[str, Any]]) -> tuple[tuple[datetime, PaySettings | None], ...]:
    out = []
    for version in history or []:
        stamp = version.get("created_at")
        try:
            since = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            # A version without its time (never written so) applies from the start.
            since = datetime.min.replace(tzinfo=UTC)
        try:
            value = pay_settings.read(current_params([version]))
        except ValidationError:
            value = None
        out.append((since, value))
    return tuple(out)


def paid_projects(session: Session, org_id: str) -> dict[str, PaidProject]:
    """The organization's live projects that have (or had) pay settings."""
    rows = session.execute(
        select(Project.id, Project.name, Project.param_history).where(
            Project.org_id == org_id, Project.is_test.is_(False)
        )
    ).all()
    out = {}
    for project_id, name, history in rows:
        versions = _versions(history)
        if any(value is not None for _, value in versions):
            out[project_id] = PaidProject(project_id, name, versions)
    return out


def closed_ends(session: Session, org_id: str) -> dict[str, datetime]:
    rows = session.execute(
        select(PayPeriod.period, PayPeriod.ends_at).where(PayPeriod.org_id == org_id)
    ).all()
    return {period: ends for period, ends in rows}


@dataclass(frozen=True, slots=True)
class Work:
    kind: str
    id: str
    user_id: str
    project_id: str
    started_at: datetime
    completed_at: datetime
    expires_at: datetime | None


def _unpaid(org_id: str, kind: str, column: Any) -> Any:
    return ~exists().where(
        PayEntry.org_id == org_id,
        PayEntry.type == PIECE_RATE,
        PayEntry.source_kind == kind,
        PayEntry.source_id == column,
    )


def _works(kind: str, rows: Iterable[Any]) -> Iterator[Work]:
    # The filters made every column present (submitted, decided, with a project).
    for work_id, user_id, project_id, started, completed, expires in rows:
        yield Work(kind, work_id, user_id, project_id, started, completed, expires)


def completed_work(
    session: Session,
    org_id: str,
    project_ids: list[str],
    until: datetime,
    user_id: str | None = None,
) -> Iterator[Work]:
    """Completed work in ``project_ids`` up to ``until`` not yet in the ledger (only
    ``user_id``'s when given)."""
    labels = session.execute(
        select(
            Label.id,
            Label.user_id,
            Task.project_id,
            Assignment.started_at,
            Assignment.submitted_at,
            Assignment.expires_at,
        )
        .join(Assignment, Assignment.id == Label.assignment_id)
        .join(Task, Task.seq == Label.task_seq)
        .where(
            Label.org_id == org_id,
            Task.project_id.in_(project_ids),
            Assignment.submitted_at <= until,
            _unpaid(org_id, "label", Label.id),
            *((Label.user_id == user_id,) if user_id else ()),
        )
    )
    yield from _works("label", labels)
    answers = session.execute(
        select(
            QualityAnswer.id,
            QualityAnswer.user_id,
            QualityAnswer.project_id,
            QualityAnswer.started_at,
            QualityAnswer.submitted_at,
            QualityAnswer.expires_at,
        ).where(
            QualityAnswer.org_id == org_id,
            QualityAnswer.project_id.in_(project_ids),
            QualityAnswer.status == "submitted",
            QualityAnswer.submitted_at <= until,
            _unpaid(org_id, "quality_answer", QualityAnswer.id),
            *((QualityAnswer.user_id == user_id,) if user_id else ()),
        )
    )
    yield from _works("quality_answer", answers)
    reviews = session.execute(
        select(
            Review.id,
            Review.reviewer_id,
            Review.project_id,
            Review.started_at,
            Review.decided_at,
            Review.expires_at,
        ).where(
            Review.org_id == org_id,
            Review.project_id.in_(project_ids),
            Review.status.in_(DECIDED_REVIEWS),
            and_(Review.reviewer_id.is_not(None), Review.started_at.is_not(None)),
            Review.decided_at <= until,
            _unpaid(org_id, "review", Review.id),
            *((Review.reviewer_id == user_id,) if user_id else ()),
        )
    )
    yield from _works("review", reviews)


def entry_for(
    work: Work, project: PaidProject, org: OrgPay, closed: Mapping[str, datetime]
) -> NewEntry:
    rates = project.at(work.completed_at)
    seconds = rules.active_seconds(
        work.started_at, work.completed_at, work.expires_at or work.completed_at
    )
    if rates is None:
        piece, hourly, currency = 0, 0, org.currency
    else:
        piece = rates.review_rate_minor if work.kind == "review" else rates.piece_rate_minor
        hourly, currency = rates.hourly_rate_minor, rates.currency
    if currency != org.currency:
        raise ValidationError(
            f"Project '{project.name}' pays in {currency}, its organization in {org.currency}.",
            field="params.pay.currency",
        )
    # Gold must look like live work to the worker: an answer's entry reads as a label's.
    what = "review" if work.kind == "review" else "item"
    return NewEntry(
        user_id=work.user_id,
        type=PIECE_RATE,
        amount_minor=rules.piece_amount(piece, hourly, seconds),
        currency=currency,
        reason=f"{what} completed in project {project.name}",
        source_kind=work.kind,
        source_id=work.id,
        period=rules.period_of(work.completed_at, closed),
        occurred_at=work.completed_at,
        project_id=work.project_id,
        active_seconds=seconds,
    )


def pending(
    session: Session, org_id: str, org: OrgPay, until: datetime, user_id: str | None = None
) -> list[NewEntry]:
    """The piece-rate entries the organization's completed, unpaid work up to ``until`` would
    get (only ``user_id``'s when given): reads only, so it runs before a write opens."""
    projects = paid_projects(session, org_id)
    if not projects:
        return []
    closed = closed_ends(session, org_id)
    return [
        entry_for(work, projects[work.project_id], org, closed)
        for work in completed_work(session, org_id, list(projects), until, user_id)
    ]


def sweep(session: Session, org_id: str, org: OrgPay, until: datetime, now: datetime) -> int:
    """Write the piece-rate entries of the organization's completed, unpaid work up to
    ``until``; returns how many were new. Idempotent, and safe to run concurrently (``post``
    skips an entry already written), so a caller may read ``pending`` in a read transaction
    and ``post`` it in a short write instead."""
    return post(session, org_id, pending(session, org_id, org, until), now)
