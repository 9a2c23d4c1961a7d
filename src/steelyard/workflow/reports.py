"""Reports for operators and customers: a project's progress, a task's labels, the worker table.

Every query is scoped to the caller's organization and environment (``Actor.is_test``: a test
key sees the test environment's projects and tasks, a live key or an operator's session the
live ones). Read-only: the edge runs these in a read unit of work.

A worker is named by email: the organization already sees its team's emails (``/v1/teams``),
and an email is what Studio assignments and invitations take, so an operator can act on a row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from steelyard.accounts.models import User
from steelyard.accounts.schemas import Actor
from steelyard.errors import NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch
from steelyard.tasks.models import TASK_STATUSES, Task, TaskCount
from steelyard.workflow import worker_quality
from steelyard.workflow.models import Assignment, Label, Review
from steelyard.workflow.review import DECISIONS, OPEN

GOLD_NOTE = (
    "gold_accuracy is the share of right answers on the project's evaluation tasks (gold) since "
    "the worker's last lifted pause, at most the project's worker_quality.window of the most "
    "recent; gold_interval is its 95% Jeffreys interval; pause is the status of the worker's "
    "pause from the project (paused, appealed, upheld) or null"
)


def project_ref(session: Session, actor: Actor, name: str) -> projects.ProjectRef:
    """The project named ``name`` in the caller's scope; 404 naming ``name`` (the path's)."""
    try:
        return projects.project_ref(session, actor, name=name)
    except NotFound as exc:
        raise NotFound(exc.message, field="name") from None


# --- progress -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchProgress:
    #: None for the project's tasks outside any batch.
    batch: str | None
    #: The batch's own status (staging, in_progress, completed, paused, canceled).
    batch_status: str | None
    counts: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class Progress:
    project: str
    counts: dict[str, int]
    total: int
    #: Batches that have tasks, oldest first, then the tasks outside any batch.
    batches: list[BatchProgress]
    #: Review rounds (``workflow.review``): waiting for a reviewer, leased to one now, and
    #: decided (accepted, fixed, rejected). All zero for a project without review.
    review: dict[str, int] = field(default_factory=dict)


def progress_statement(actor: Actor, project_id: str) -> Any:
    """Task counts by (batch, status) of one project, from ``task_counts``.

    Those rows are kept in the same transaction as every task create and status change (the
    Scale list's ``total`` relies on them), one per (project, batch, type, status): the query
    reads a few rows per batch through the table's primary key (org, env, project, ...), never
    the project's tasks, so it costs the same at 10 or 10⁶ tasks
    (``tests/tasks/test_report_plans.py`` pins the plan).
    """
    return (
        select(
            TaskCount.batch_id,
            Batch.name,
            Batch.status,
            Batch.created_at,
            TaskCount.status,
            func.sum(TaskCount.n),
        )
        .outerjoin(Batch, (Batch.id == TaskCount.batch_id) & (Batch.org_id == actor.org_id))
        .where(
            TaskCount.org_id == actor.org_id,
            TaskCount.is_test == actor.is_test,
            TaskCount.project_id == project_id,
        )
        .group_by(TaskCount.batch_id, Batch.name, Batch.status, Batch.created_at, TaskCount.status)
    )


def _zeros() -> dict[str, int]:
    return dict.fromkeys(TASK_STATUSES, 0)


def progress(session: Session, actor: Actor, name: str) -> Progress:
    project = project_ref(session, actor, name)
    overall = _zeros()
    per_batch: dict[str, dict[str, int]] = defaultdict(_zeros)
    about: dict[str, tuple[str | None, str | None, datetime | None]] = {}
    for batch_id, batch_name, batch_status, created, status, n in session.execute(
        progress_statement(actor, project.id)
    ):
        n = int(n or 0)
        overall[status] = overall.get(status, 0) + n
        per_batch[batch_id][status] = per_batch[batch_id].get(status, 0) + n
        about[batch_id] = (batch_name, batch_status, created)

    def order(batch_id: str) -> tuple[int, str, str]:
        # Batches by age (then name), the tasks outside any batch ("") last.
        name, _, created = about[batch_id]
        return (0 if batch_id else 1, created.isoformat() if created else "", name or batch_id)

    batches = [
        BatchProgress(
            # A batch row gone from under its counters is shown by id rather than dropped.
            batch=(about[batch_id][0] or batch_id) if batch_id else None,
            batch_status=about[batch_id][1] if batch_id else None,
            counts=counts,
            total=sum(counts.values()),
        )
        for batch_id, counts in sorted(per_batch.items(), key=lambda item: order(item[0]))
        if batch_id or sum(counts.values()) > 0
    ]
    return Progress(
        project.name,
        overall,
        sum(overall.values()),
        batches,
        review_counts(session, actor, project.id),
    )


# --- review ---------------------------------------------------------------------------------


def review_counts(session: Session, actor: Actor, project_id: str) -> dict[str, int]:
    """A project's review rounds by state: ``awaiting`` and ``in_review`` (open rounds of
    pending tasks; a task canceled while waiting is no longer reviewed), ``accepted``,
    ``fixed``, ``rejected``. Read through ``ix_reviews_project_status``: an index-only count,
    which grows with the project's reviews (not its tasks)."""
    counts = dict.fromkeys(("awaiting", "in_review", *DECISIONS), 0)
    decided = session.execute(
        select(Review.status, func.count())
        .where(
            Review.org_id == actor.org_id,
            Review.project_id == project_id,
            Review.status.in_(DECISIONS),
        )
        .group_by(Review.status)
    )
    for status, n in decided:
        counts[status] = int(n)
    waiting = session.execute(
        select(Review.status, func.count())
        .join(Task, Task.seq == Review.task_seq)
        .where(
            Review.org_id == actor.org_id,
            Review.project_id == project_id,
            Review.status.in_(OPEN),
            Task.status == "pending",
        )
        .group_by(Review.status)
    )
    for status, n in waiting:
        counts["in_review" if status == "active" else "awaiting"] = int(n)
    return counts


@dataclass(frozen=True, slots=True)
class QueueItem:
    task_id: str
    #: Why the task waits: "sampled", "all" or "disagreement".
    reason: str
    candidate: dict[str, Any]
    confidence: float | None
    #: When its labels were aggregated and it started to wait.
    waiting_since: datetime
    #: Whether a reviewer holds it now.
    in_review: bool
    review_id: str


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    project: str
    #: Oldest first.
    items: list[QueueItem]
    #: Pass as ``next_token`` for the next page; null on the last.
    next_token: str | None


def _read_token(token: str | None) -> tuple[datetime, str] | None:
    if not token:
        return None
    when, sep, review_id = token.partition("~")
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        at = None
    if not sep or not review_id or at is None or at.tzinfo is None:
        raise ValidationError("next_token is not one this report gave.", field="next_token")
    return at, review_id


def review_queue(
    session: Session, actor: Actor, name: str, *, limit: int, next_token: str | None
) -> ReviewQueue:
    """A project's tasks waiting for review, oldest first, ``limit`` a page (keyset-paged on
    the time they started waiting and the review id)."""
    after = _read_token(next_token)
    project = project_ref(session, actor, name)
    stmt = (
        select(Review, Task.task_id)
        .join(Task, Task.seq == Review.task_seq)
        .where(
            Review.org_id == actor.org_id,
            Review.project_id == project.id,
            Review.status.in_(OPEN),
            Task.status == "pending",
        )
        .order_by(Review.created_at, Review.id)
        .limit(limit + 1)
    )
    if after is not None:
        at, review_id = after
        stmt = stmt.where(
            or_(
                Review.created_at > at,
                and_(Review.created_at == at, Review.id > review_id),
            )
        )
    rows = session.execute(stmt).all()
    items = [
        QueueItem(
            task_id=task_id,
            reason=r.reason,
            candidate=r.candidate,
            confidence=r.confidence,
            waiting_since=r.created_at,
            in_review=r.status == "active",
            review_id=r.id,
        )
        for r, task_id in rows[:limit]
    ]
    token = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        token = f"{last.created_at.isoformat()}~{last.id}"
    return ReviewQueue(project.name, items, token)


# --- a task's labels ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelView:
    #: The worker's email.
    worker: str
    response: dict[str, Any]
    submitted_at: datetime
    #: Rejected with the task's answer (a customer's audit or a reviewer): no longer aggregated.
    superseded: bool = False


def task_labels(session: Session, actor: Actor, task_id: str) -> list[LabelView]:
    """The labels submitted for a task, oldest first; 404 naming ``task_id`` for a task outside
    the caller's organization or environment."""
    seq = session.scalar(
        select(Task.seq).where(
            Task.task_id == task_id, Task.org_id == actor.org_id, Task.is_test == actor.is_test
        )
    )
    if seq is None:
        raise NotFound(f"No task with id '{task_id}'.", field="task_id")
    rows = session.execute(
        select(User.email, Label.response, Label.created_at, Label.superseded)
        .join(User, User.id == Label.user_id)
        .where(Label.task_seq == seq, Label.org_id == actor.org_id)
        .order_by(Label.created_at, Label.id)
    )
    return [LabelView(email, response, at, bool(sup)) for email, response, at, sup in rows]


# --- the worker table -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRow:
    #: The worker's email.
    worker: str
    #: Labels submitted on this project's tasks.
    labels: int
    #: Leases taken on this project's tasks (submitted, expired, still open...).
    assignments: int
    #: Leases that ran out before a submit (reclaimed, or past their expiry and not yet).
    expired: int
    #: Tasks the worker skipped (``POST /api/work/{id}/skip``); never offered to them again.
    skipped: int
    #: Mean seconds from lease to submit over the worker's submitted labels.
    mean_active_seconds: float | None
    #: Accuracy on evaluation (gold) tasks, null with none answered (see ``notes``).
    gold_accuracy: float | None
    #: Gold answers weighed (``gold_accuracy``'s denominator) and its 95% interval.
    gold_answered: int = 0
    gold_interval: tuple[float, float] | None = None
    #: The worker's pause from the project for quality (paused, appealed, upheld) or null.
    pause: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerTable:
    project: str
    #: Most labels first, then by email.
    workers: list[WorkerRow]
    notes: list[str] = field(default_factory=list)


def workers_statement(actor: Actor, project_id: str, now: datetime) -> Any:
    """Per worker and lease state: leases, labels, summed and counted active seconds.

    A lease that is still ``active`` past its expiry is counted as expired: it is reclaimed only
    when someone next takes the task.
    """
    lapsed = and_(Assignment.status == "active", Assignment.expires_at <= now)
    state = case((lapsed, "expired"), else_=Assignment.status)
    return (
        select(
            User.email,
            state,
            func.count(Assignment.id),
            func.count(Label.id),
            func.sum(Assignment.active_seconds),
            func.count(Assignment.active_seconds),
        )
        .join(Task, Task.seq == Assignment.task_seq)
        .join(User, User.id == Assignment.user_id)
        .outerjoin(Label, Label.assignment_id == Assignment.id)
        .where(
            Assignment.org_id == actor.org_id,
            Task.org_id == actor.org_id,
            Task.is_test == actor.is_test,
            Task.project_id == project_id,
        )
        .group_by(User.email, state)
    )


def worker_table(session: Session, actor: Actor, name: str, now: datetime) -> WorkerTable:
    project = project_ref(session, actor, name)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0, 0])
    for email, state, leases, labels, seconds, timed in session.execute(
        workers_statement(actor, project.id, now)
    ):
        row = totals[email]
        row[0] += leases
        row[1] += labels
        row[2] += leases if state == "expired" else 0
        row[3] += float(seconds or 0.0)
        row[4] += timed
        row[5] += leases if state == "skipped" else 0
    gold = {
        row.email: row
        for row in worker_quality.project_summary(session, actor.org_id, project.id).values()
    }
    if actor.is_test:  # workers, gold and pauses are the live environment's
        gold = {}
    for email in gold.keys() - totals.keys():  # gold answers only: still a row
        totals[email] = [0, 0, 0, 0.0, 0, 0]
    rows = []
    for email, (leases, labels, expired, seconds, timed, skipped) in totals.items():
        summary = gold.get(email)
        acc = summary.accuracy if summary is not None else None
        rows.append(
            WorkerRow(
                worker=email,
                labels=int(labels),
                assignments=int(leases),
                expired=int(expired),
                skipped=int(skipped),
                mean_active_seconds=seconds / timed if timed else None,
                gold_accuracy=acc.accuracy if acc is not None else None,
                gold_answered=acc.answered if acc is not None else 0,
                gold_interval=(acc.low, acc.high)
                if acc is not None and acc.low is not None and acc.high is not None
                else None,
                pause=summary.pause if summary is not None else None,
            )
        )
    rows.sort(key=lambda r: (-r.labels, r.worker))
    return WorkerTable(project.name, rows, [GOLD_NOTE])
