"""A worker's quality per project, measured on gold, and the pause it can lead to.

The measure: the worker's answers to the project's evaluation tasks (hidden gold,
``quality_answers`` with kind ``evaluation``, scored when submitted), the most recent
``window`` of them since their evidence window began, as right-of-answered with a Jeffreys
interval (``quality.gold``). The window begins at the worker's start, and again each time a
pause of theirs in the project is lifted: gold answered before a lift never counts again, so a
lifted worker needs ``min_gold`` fresh answers before they can be paused anew.

The pause (``after_gold_answer``, run after each scored gold answer in the submit's write):
when the project sets ``params.worker_quality`` and the worker's window falls short of it with
confidence (``quality.gold.falls_short``: ``min_gold`` answers in, and the upper end of their
99% interval below ``min_accuracy``), a ``WorkerPause`` opens with a plain-language reason and
the evidence (counts, accuracy, interval, threshold, and every gold answer it rests on). It
blocks the project's live tasks (``eligibility.work_scope``) while ``paused``, ``appealed`` or
``upheld``; ``workflow.pauses`` handles the appeal and the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from steelyard.accounts.models import User
from steelyard.db.base import new_id
from steelyard.db.engine import Database
from steelyard.errors import ValidationError
from steelyard.projects import workflow_settings
from steelyard.projects.models import Project
from steelyard.projects.workflow_settings import WorkerQuality
from steelyard.quality.gold import (
    PAUSE_LEVEL,
    GoldAccuracy,
    falls_short,
    gold_accuracy,
    pause_bound,
)
from steelyard.timefmt import iso
from steelyard.workflow.models import QualityAnswer, WorkerPause

#: Without a project setting, a record still covers this many answers (the setting's default).
DEFAULT_WINDOW = 200
#: A pause in these states keeps the worker from the project's tasks.
BLOCKING = ("paused", "appealed", "upheld")
#: At most one per worker and project (the partial unique index ``ux_worker_pauses_open``).
OPEN = ("paused", "appealed")
_OPEN_PREDICATE = text("status IN ('paused', 'appealed')")
#: A literal list: only then can the planners seek ``ix_worker_pauses_org_status`` per status.
BLOCKING_LITERALS: tuple[ColumnElement[str], ...] = tuple(
    literal_column(f"'{s}'") for s in BLOCKING
)


def _setting_column(dialect: str) -> ColumnElement[Any]:
    # The current params' ``worker_quality`` read in SQL, without decoding the params' history
    # (as ``projects.params.version_column`` reads the version).
    history = Project.param_history
    if dialect == "postgresql":
        return history.op("->")(literal_column("-1")).op("->>")(literal_column("'worker_quality'"))
    return func.json_extract(history, "$[#-1].worker_quality")


def project_setting(session: Session, org_id: str, project_id: str) -> WorkerQuality | None:
    """The project's ``params.worker_quality``, or ``None`` when it sets none."""
    column = _setting_column(session.get_bind().dialect.name)
    raw = session.scalar(select(column).where(Project.id == project_id, Project.org_id == org_id))
    if raw is None:
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    try:
        return workflow_settings.worker_quality({"worker_quality": value})
    except ValidationError:
        # Checked when the params were set; a setting that no longer reads pauses nobody.
        return None


def last_lift_statement(org_id: str, project_id: str, user_id: str) -> Any:
    """When the worker's last pause in the project was lifted (a seek on
    ``ix_worker_pauses_org_status``)."""
    return select(func.max(WorkerPause.decided_at)).where(
        WorkerPause.org_id == org_id,
        WorkerPause.status == literal_column("'lifted'"),
        WorkerPause.project_id == project_id,
        WorkerPause.user_id == user_id,
    )


def window_start(session: Session, org_id: str, project_id: str, user_id: str) -> datetime | None:
    """When the worker's evidence window began: their last lifted pause's decision, if any."""
    started: datetime | None = session.scalar(last_lift_statement(org_id, project_id, user_id))
    return started


@dataclass(frozen=True, slots=True)
class GoldAnswer:
    answer_id: str
    quality_task_id: str
    correct: bool
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class GoldRecord:
    """A worker's gold record in one project: the answers weighed (newest first) and the
    accuracy they give."""

    since: datetime | None
    window: int
    answers: list[GoldAnswer]
    accuracy: GoldAccuracy


def gold_answers_statement(
    org_id: str, project_id: str, user_id: str, since: datetime | None, limit: int
) -> Any:
    """The worker's scored gold answers in the project after ``since``, newest first: a seek
    on ``ix_quality_answers_project_user``."""
    stmt = select(
        QualityAnswer.id,
        QualityAnswer.quality_task_id,
        QualityAnswer.correct,
        QualityAnswer.submitted_at,
    ).where(
        QualityAnswer.project_id == project_id,
        QualityAnswer.user_id == user_id,
        QualityAnswer.kind == literal_column("'evaluation'"),
        QualityAnswer.status == literal_column("'submitted'"),
        QualityAnswer.org_id == org_id,
        QualityAnswer.correct.is_not(None),
    )
    if since is not None:
        stmt = stmt.where(QualityAnswer.submitted_at > since)
    return stmt.order_by(QualityAnswer.submitted_at.desc(), QualityAnswer.id.desc()).limit(limit)


def gold_record(
    session: Session, org_id: str, project_id: str, user_id: str, window: int
) -> GoldRecord:
    since = window_start(session, org_id, project_id, user_id)
    rows = session.execute(gold_answers_statement(org_id, project_id, user_id, since, window))
    answers = [GoldAnswer(a, q, bool(c), at) for a, q, c, at in rows]
    right = sum(1 for a in answers if a.correct)
    return GoldRecord(since, window, answers, gold_accuracy(right, len(answers)))


def blocking_pause_statement(org_id: str, project_id: str, user_id: str) -> Any:
    """The worker's pause that blocks them from the project, newest first (a seek per blocking
    status on ``ix_worker_pauses_org_status``)."""
    return (
        select(WorkerPause)
        .where(
            WorkerPause.org_id == org_id,
            WorkerPause.status.in_(BLOCKING_LITERALS),
            WorkerPause.user_id == user_id,
            WorkerPause.project_id == project_id,
        )
        .order_by(WorkerPause.created_at.desc())
        .limit(1)
    )


def blocking_pause(
    session: Session, org_id: str, project_id: str, user_id: str
) -> WorkerPause | None:
    pause: WorkerPause | None = session.scalar(
        blocking_pause_statement(org_id, project_id, user_id)
    )
    return pause


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def reason_text(record: GoldRecord, setting: WorkerQuality) -> str:
    acc = record.accuracy
    bound = pause_bound(acc)
    return (
        f"On the project's check questions (tasks whose right answer is known) you answered "
        f"{acc.correct} of {acc.answered} right ({_percent(acc.accuracy)}). The project asks for "
        f"at least {_percent(setting.min_accuracy)}, and even the most favourable reading of "
        f"your answers (up to {_percent(bound)}, the top of their {100 * PAUSE_LEVEL:.0f}% "
        "interval) is below that, so you are paused from this project. You can see the "
        "questions you got wrong with their right answers, and appeal; someone other than you "
        "decides."
    )


def evidence_doc(record: GoldRecord, setting: WorkerQuality) -> dict[str, Any]:
    acc = record.accuracy
    return {
        "answered": acc.answered,
        "correct": acc.correct,
        "accuracy": acc.accuracy,
        "interval": {"low": acc.low, "high": acc.high, "level": acc.level, "method": acc.method},
        "pause_bound": {"high": pause_bound(acc), "level": PAUSE_LEVEL, "method": acc.method},
        "min_accuracy": setting.min_accuracy,
        "min_gold": setting.min_gold,
        "window": setting.window,
        "since": iso(record.since) if record.since is not None else None,
        "rule": f"paused when at least min_gold gold answers are in and the upper end of their "
        f"{100 * PAUSE_LEVEL:.0f}% interval (pause_bound) is below min_accuracy",
        "items": [
            {
                "answer_id": a.answer_id,
                "item": a.quality_task_id,
                "correct": a.correct,
                "submitted_at": iso(a.submitted_at),
            }
            for a in record.answers
        ],
    }


def after_gold_answer(
    session: Session, org_id: str, project_id: str, user_id: str, now: datetime
) -> WorkerPause | None:
    """Run after a worker's gold answer is scored and stored, in the same write: opens and
    returns a pause when the worker now falls short of the project's ``worker_quality``
    setting, else ``None`` (no setting, not enough answers, not short, or already paused).

    Reads the setting, the last lift and at most ``window`` answers, through indexes; the
    statistics are one Beta quantile pair. A concurrent check that opened the same pause first
    wins (the insert does nothing and this returns ``None``)."""
    setting = project_setting(session, org_id, project_id)
    if setting is None or blocking_pause(session, org_id, project_id, user_id) is not None:
        return None
    record = gold_record(session, org_id, project_id, user_id, setting.window)
    if not falls_short(
        record.accuracy, min_accuracy=setting.min_accuracy, min_gold=setting.min_gold
    ):
        return None
    return open_pause(
        session,
        org_id,
        project_id,
        user_id,
        reason=reason_text(record, setting),
        evidence=evidence_doc(record, setting),
        now=now,
    )


def open_pause(
    session: Session,
    org_id: str,
    project_id: str,
    user_id: str,
    *,
    reason: str,
    evidence: dict[str, Any],
    now: datetime,
) -> WorkerPause | None:
    """Insert a ``paused`` pause unless the worker already has an open one in the project
    (the partial unique index decides, so two concurrent checks open one pause)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(WorkerPause)
        .values(
            id=new_id(),
            org_id=org_id,
            project_id=project_id,
            user_id=user_id,
            status="paused",
            reason=reason,
            evidence=evidence,
            created_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["project_id", "user_id"], index_where=_OPEN_PREDICATE
        )
        .returning(WorkerPause.id)
    ).scalar_one_or_none()
    if inserted is None:
        return None
    return session.get(WorkerPause, inserted)


@dataclass(frozen=True, slots=True)
class ProjectWorker:
    """One worker's row of the project's gold summary (the operators' worker table)."""

    email: str
    accuracy: GoldAccuracy
    #: The worker's blocking pause's status, or None.
    pause: str | None


def project_summary(session: Session, org_id: str, project_id: str) -> dict[str, ProjectWorker]:
    """Per worker (by id) with gold answers or a pause in the project: the same record as
    ``gold_record`` (the window after their last lift, at most the setting's ``window``
    answers), read in three grouped queries rather than one per worker."""
    setting = project_setting(session, org_id, project_id)
    window = setting.window if setting is not None else DEFAULT_WINDOW
    lifts = dict(
        session.execute(
            select(WorkerPause.user_id, func.max(WorkerPause.decided_at))
            .where(
                WorkerPause.org_id == org_id,
                WorkerPause.project_id == project_id,
                WorkerPause.status == "lifted",
            )
            .group_by(WorkerPause.user_id)
        ).all()
    )
    statuses: dict[str, str] = {}
    for user_id, status in session.execute(
        select(WorkerPause.user_id, WorkerPause.status)
        .where(
            WorkerPause.org_id == org_id,
            WorkerPause.project_id == project_id,
            WorkerPause.status.in_(BLOCKING_LITERALS),
        )
        .order_by(WorkerPause.created_at)
    ):
        statuses[user_id] = status
    counts: dict[str, list[int]] = {}
    emails: dict[str, str] = {}
    for user_id, email, correct, at in session.execute(
        select(QualityAnswer.user_id, User.email, QualityAnswer.correct, QualityAnswer.submitted_at)
        .join(User, User.id == QualityAnswer.user_id)
        .where(
            QualityAnswer.project_id == project_id,
            QualityAnswer.org_id == org_id,
            QualityAnswer.kind == "evaluation",
            QualityAnswer.status == "submitted",
            QualityAnswer.correct.is_not(None),
        )
        .order_by(QualityAnswer.user_id, QualityAnswer.submitted_at.desc(), QualityAnswer.id.desc())
    ):
        emails[user_id] = email
        since = lifts.get(user_id)
        tally = counts.setdefault(user_id, [0, 0])
        before_lift = since is not None and at is not None and at <= since
        if before_lift or tally[0] >= window:
            continue
        tally[0] += 1
        tally[1] += 1 if correct else 0
    missing = set(statuses) - set(emails)
    if missing:
        emails.update(
            session.execute(select(User.id, User.email).where(User.id.in_(missing))).all()
        )
    return {
        user_id: ProjectWorker(
            email,
            _accuracy(counts.get(user_id)),
            statuses.get(user_id),
        )
        for user_id, email in emails.items()
    }


def _accuracy(tally: list[int] | None) -> GoldAccuracy:
    answered, right = tally or (0, 0)
    return gold_accuracy(right, answered)


#: Workers rechecked per write when a project's setting changes (each a few index seeks).
RECHECK_CHUNK = 100


def recheck_project(db: Database, org_id: str, project_id: str, now: datetime) -> int:
    """Check every worker with gold answers in the project against its (new) setting, as a
    gold answer would, in short writes of ``RECHECK_CHUNK`` workers; returns the pauses
    opened. Run after ``params.worker_quality`` changes: a stricter setting pauses those now
    short of it; a looser one lifts nobody (a person decides that, on appeal)."""
    with db.unit_of_work(write=False) as session:
        users = list(
            session.scalars(
                select(QualityAnswer.user_id)
                .where(
                    QualityAnswer.project_id == project_id,
                    QualityAnswer.org_id == org_id,
                    QualityAnswer.kind == "evaluation",
                )
                .distinct()
                .order_by(QualityAnswer.user_id)
            )
        )
    opened = 0
    for start in range(0, len(users), RECHECK_CHUNK):
        with db.unit_of_work() as session:
            for user_id in users[start : start + RECHECK_CHUNK]:
                opened += after_gold_answer(session, org_id, project_id, user_id, now) is not None
    return opened
