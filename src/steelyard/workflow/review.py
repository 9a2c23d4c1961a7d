"""Review: a task whose labels are in and aggregated waits for a reviewer before it completes.

Which tasks wait is the project's ``params.review`` (``projects.workflow_settings.Review``),
recorded on each task at create (``Task.review_mode``, ``review_value``) so that a submit reads
nothing more to know it: the submit that brings a task's last label asks ``reason_for`` and,
when the task waits, calls ``hold`` instead of completing it (``completion.submit``, the one
place where the workflow's "complete" becomes "complete, or wait for review"). A task
without review completes as before.

* ``all``: every task.
* ``sampled``: the tasks whose id hashes below ``fraction`` (``sampled``): deterministic, so the
  same task is always in or out of the sample (reproducible, testable), and uniform.
* ``disagreement``: the tasks whose aggregate ``confidence`` is below ``agreement_below``. The
  confidence rather than the share of labels agreeing with the aggregate: every aggregator
  gives one (the share agreeing is defined for votes, not for boxes or spans), it already
  weighs workers by their fitted reliability where the project has a worker model, and it is
  the number the customer is shown and adaptive redundancy stops on.

A waiting task stays ``pending`` (as Scale shows it) with its aggregate kept as the candidate
(a ``Review`` row). A reviewer (``REVIEWER_ROLES``; never one who labeled the task, superseded
labels included) takes it with a lease as a labeler takes a task: ``next_review`` (a
compare-and-set on ``status = 'awaiting'``, so one reviewer at a time), ``heartbeat``,
``release``; leases that run out go back to the queue (``reclaim_expired``, run by the job
runner's reaper and by ``next_review`` when it finds nothing). The reviewer then

* ``accept``: the task completes with the candidate and its confidence;
* ``fix``: the task completes with the reviewer's response (checked by the task type before
  the write: ``fix_target`` and ``check_fix``), the candidate kept in ``prior_responses``; its
  confidence is null: a person decided it, not the aggregator;
* ``reject`` with a reason: the labels are superseded and the task is labeled again by other
  workers, who see the reason (``workflow.rework.relabel``, the audit rejection's mechanism).

A completion queues the task's callback (and its batch's) in the same transaction, as a submit
does. Lock order: the review row, then the task row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, literal_column, select, update
from sqlalchemy.orm import Session, defer

from steelyard.accounts.models import User
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.errors import Forbidden, InvalidState, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.tasks.models import Task
from steelyard.tasktypes import registry
from steelyard.validation import under
from steelyard.workflow import batches, rework
from steelyard.workflow.leases import CANDIDATES, RECLAIM_BATCH, elapsed
from steelyard.workflow.models import Label, Review

REVIEWER_ROLES = ("reviewer", "manager", "admin", "owner")
#: A review round open (waiting, or leased to a reviewer) or decided.
OPEN = ("awaiting", "active")
DECISIONS = ("accepted", "fixed", "rejected")
#: The longest rejection reason kept.
MAX_REASON = 5_000
#: Literals, not bound parameters: only then can the planners use the partial indexes.
_ACTIVE: ColumnElement[str] = literal_column("'active'")
_AWAITING: ColumnElement[str] = literal_column("'awaiting'")


# --- whether a task waits -------------------------------------------------------------------


def sampled(task_id: str, fraction: float) -> bool:
    """Whether ``task_id`` is in a ``fraction`` sample: its hash, as a number in [0, 1), is
    below ``fraction``. The same task always gets the same answer."""
    digest = hashlib.blake2b(task_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2.0**64


def reason_for(
    mode: str | None, value: float | None, task_id: str, confidence: float | None
) -> str | None:
    """Why a task with review ``mode`` (and its ``value``) and this aggregate waits for a
    reviewer (``"all"``, ``"sampled"``, ``"disagreement"``), or ``None``: it completes."""
    if mode == "all":
        return "all"
    if mode == "sampled" and value is not None and sampled(task_id, value):
        return "sampled"
    # No confidence at all (none computed) is no evidence of agreement.
    if mode == "disagreement" and value is not None and (confidence is None or confidence < value):
        return "disagreement"
    return None


def hold(
    session: Session,
    *,
    org_id: str,
    project_id: str,
    task_seq: int,
    reason: str,
    candidate: dict[str, Any],
    confidence: float | None,
    now: datetime,
) -> None:
    """Keep a pending task's aggregate as the candidate of a new review round (``reason``, from
    ``reason_for``) instead of completing it: the submit that brought its last label calls this
    where it would complete the task (``completion.submit``)."""
    session.connection().execute(
        insert(Review).values(
            id=new_id(),
            org_id=org_id,
            project_id=project_id,
            task_seq=task_seq,
            reason=reason,
            candidate=candidate,
            confidence=confidence,
            status="awaiting",
            created_at=now,
        )
    )
    session.connection().execute(update(Task).where(Task.seq == task_seq).values(updated_at=now))


# --- a reviewer's lease ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelLine:
    #: The worker's email.
    worker: str
    response: dict[str, Any]
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewLease:
    review: Review
    task: Task
    #: The labels the candidate was aggregated from, oldest first.
    labels: list[LabelLine]


def check_reviewer(actor: Actor) -> str:
    if actor.kind != "user" or actor.user_id is None or actor.role not in REVIEWER_ROLES:
        raise Forbidden("Only signed-in reviewers, managers, admins and owners can review.")
    return actor.user_id


def _held(session: Session, actor: Actor, user_id: str) -> Review | None:
    return session.scalar(
        select(Review)
        .where(
            Review.reviewer_id == user_id,
            Review.status == _ACTIVE,
            Review.org_id == actor.org_id,
        )
        .order_by(Review.started_at)
        .limit(1)
    )


def candidate_statement(actor: Actor, user_id: str, project_id: str | None) -> Any:
    """The oldest waiting review of a pending task this reviewer did not label (superseded
    labels too): walked in order on ``ix_reviews_project_status`` (or ``ix_reviews_org_status``
    across projects), one label probe per candidate."""
    labeled = (
        select(Label.id).where(Label.task_seq == Review.task_seq, Label.user_id == user_id).exists()
    )
    stmt = (
        select(Review.id)
        .join(Task, Task.seq == Review.task_seq)
        .where(
            Review.org_id == actor.org_id,
            Review.status == _AWAITING,
            Task.status == "pending",
            ~labeled,
        )
        .order_by(Review.created_at, Review.id)
        .limit(1)
    )
    if project_id is not None:
        stmt = stmt.where(Review.project_id == project_id)
    return stmt


def next_review(
    session: Session,
    actor: Actor,
    *,
    project_name: str | None,
    now: datetime,
    lease_seconds: float,
) -> ReviewLease | None:
    """The reviewer's live review lease if any, else a new lease on the oldest waiting review
    (of ``project_name``'s tasks if given), else ``None``."""
    user_id = check_reviewer(actor)
    project_id = None
    if project_name:
        project_id = projects.project_ref(session, actor, name=project_name).id
    held = _held(session, actor, user_id)
    if held is not None:
        task = session.get(Task, held.task_seq)
        if held.expires_at is not None and held.expires_at > now and _pending(task):
            assert task is not None
            return _lease(session, held, task)
        _reopen(session, [held.id])
    candidate = candidate_statement(actor, user_id, project_id)
    if session.get_bind().dialect.name == "postgresql":
        # Concurrent reviewers pass over each other's rows rather than queueing on them.
        candidate = candidate.with_for_update(skip_locked=True, of=Review)
    expires = now + timedelta(seconds=lease_seconds)
    reclaimed = False
    for _attempt in range(CANDIDATES):
        review_id = session.scalar(candidate)
        if review_id is None:
            if not reclaimed and reclaim_expired(session, now, org_id=actor.org_id) > 0:
                reclaimed = True
                continue
            return None
        taken = session.execute(
            update(Review)
            .where(Review.id == review_id, Review.status == _AWAITING)
            .values(status="active", reviewer_id=user_id, started_at=now, expires_at=expires)
            .returning(Review.id)
            .execution_options(synchronize_session=False)
        ).first()
        if taken is None:
            continue
        review = session.get(Review, review_id, populate_existing=True)
        assert review is not None
        task = session.get(Task, review.task_seq)
        assert task is not None
        return _lease(session, review, task)
    return None


def _pending(task: Task | None) -> bool:
    return task is not None and task.status == "pending"


def _lease(session: Session, review: Review, task: Task) -> ReviewLease:
    rows = session.execute(
        select(User.email, Label.response, Label.created_at)
        .join(User, User.id == Label.user_id)
        .where(Label.task_seq == review.task_seq, Label.superseded.is_(False))
        .order_by(Label.created_at, Label.id)
    )
    return ReviewLease(review, task, [LabelLine(e, r, at) for e, r, at in rows])


def _reopen(session: Session, ids: list[str]) -> int:
    """Leased reviews ``ids`` back to the queue (compare-and-set on ``active``)."""
    if not ids:
        return 0
    moved = session.execute(
        update(Review)
        .where(Review.id.in_(ids), Review.status == _ACTIVE)
        .values(status="awaiting", reviewer_id=None, started_at=None, expires_at=None)
        .returning(Review.id)
        .execution_options(synchronize_session=False)
    ).all()
    for review in session.identity_map.values():
        if isinstance(review, Review) and review.id in ids:
            session.expire(review)
    return len(moved)


def reclaim_expired(
    session: Session, now: datetime, *, org_id: str | None = None, limit: int = RECLAIM_BATCH
) -> int:
    """Put up to ``limit`` reviews whose lease ran out back in the queue."""
    stmt = (
        select(Review.id)
        .where(Review.status == _ACTIVE, Review.expires_at <= now)
        .order_by(Review.expires_at)
        .limit(limit)
    )
    if org_id is not None:
        stmt = stmt.where(Review.org_id == org_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return _reopen(session, list(session.scalars(stmt)))


def anything_expired(session: Session, now: datetime) -> bool:
    """Whether ``reclaim_expired`` would find work (asked in a read transaction first)."""
    stmt = select(Review.id).where(Review.status == _ACTIVE, Review.expires_at <= now)
    return session.scalar(stmt.limit(1)) is not None


def _own(session: Session, actor: Actor, review_id: str) -> Review:
    """The caller's leased review ``review_id``: 404 outside the organization; refused when
    the lease is not the caller's (ended, or another reviewer's)."""
    user_id = check_reviewer(actor)
    review = session.scalar(
        select(Review).where(Review.id == review_id, Review.org_id == actor.org_id)
    )
    if review is None:
        raise NotFound(f"No review with id '{review_id}'.", field="review_id")
    if review.status != "active" or review.reviewer_id != user_id:
        raise not_held(review)
    return review


def not_held(review: Review) -> InvalidState:
    if review.status in DECISIONS:
        return InvalidState(f"This review is {review.status}.", field="review_id")
    return InvalidState(
        "This review is not leased to you (the lease ended or was released).",
        field="review_id",
    )


def heartbeat(
    session: Session, actor: Actor, review_id: str, now: datetime, lease_seconds: float
) -> Review:
    """Extend the caller's review lease to ``now + lease_seconds`` (one that ran out but was
    not reclaimed too, as for labels)."""
    review = _own(session, actor, review_id)
    moved = session.execute(
        update(Review)
        .where(
            Review.id == review.id,
            Review.status == _ACTIVE,
            Review.reviewer_id == review.reviewer_id,
        )
        .values(expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Review.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(review)
    if moved is None:
        raise not_held(review)
    return review


def release(session: Session, actor: Actor, review_id: str) -> Review:
    """Give the review back to the queue (another reviewer, or this one, may take it)."""
    review = _own(session, actor, review_id)
    _reopen(session, [review.id])
    session.refresh(review)
    return review


# --- decisions ------------------------------------------------------------------------------


def _decide(
    session: Session, actor: Actor, review_id: str, now: datetime, decision: str, **values: Any
) -> tuple[Review, Task]:
    """Move the caller's leased review to ``decision`` (compare-and-set on its lease) and lock
    its task, which must still be pending (a refusal rolls the move back)."""
    review = _own(session, actor, review_id)
    assert review.started_at is not None
    moved = session.execute(
        update(Review)
        .where(
            Review.id == review.id,
            Review.status == _ACTIVE,
            Review.reviewer_id == review.reviewer_id,
        )
        .values(
            status=decision,
            decided_at=now,
            active_seconds=elapsed(review.started_at, now),
            **values,
        )
        .returning(Review.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(review)
    if moved is None:
        raise not_held(review)
    task = session.scalar(
        select(Task)
        .where(Task.seq == review.task_seq)
        .options(defer(Task.params, raiseload=True))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if task is None or task.status != "pending":
        raise InvalidState(
            f"The task is {task.status if task else 'gone'}; it is no longer reviewed.",
            field="review_id",
        )
    return review, task


def accept(session: Session, actor: Actor, review_id: str, now: datetime) -> tuple[Review, Task]:
    """The task completes with the candidate and its confidence."""
    review, task = _decide(session, actor, review_id, now, "accepted")
    batches.complete_task(session, task, review.candidate, now, confidence=review.confidence)
    session.flush()
    return review, task


@dataclass(frozen=True, slots=True)
class FixTarget:
    """What a fix is checked against: the task's type and params (read before the write)."""

    review_id: str
    type: str
    params: dict[str, Any]


def _body(body: Any, key: str, what: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise ValidationError(f'The body must be {{"{key}": {what}}}.', field=key)
    return body[key]


def fix_target(session: Session, actor: Actor, review_id: str, body: Any) -> FixTarget:
    """Read (a read transaction) the caller's leased review's task type and params; refuse at
    once what the write would refuse."""
    _body(body, "response", "{...}")
    review = _own(session, actor, review_id)
    type_name, params = session.execute(
        select(Task.type, Task.params).where(Task.seq == review.task_seq)
    ).one()
    return FixTarget(review.id, type_name, params or {})


def check_fix(target: FixTarget, body: Any) -> dict[str, Any]:
    """The reviewer's response checked by the task type, as a worker's is: pure, run with no
    transaction open."""
    response = _body(body, "response", "{...}")
    try:
        return registry.get(target.type).validate_response(target.params, response)
    except ValidationError as exc:
        raise under("response", exc) from None


def fix(
    session: Session, actor: Actor, review_id: str, response: dict[str, Any], now: datetime
) -> tuple[Review, Task]:
    """The task completes with ``response`` (checked by ``check_fix``); the candidate goes to
    ``prior_responses``."""
    review, task = _decide(session, actor, review_id, now, "fixed", response=response)
    task.prior_responses = [*task.prior_responses, review.candidate]
    batches.complete_task(session, task, response, now, confidence=None)
    session.flush()
    return review, task


def read_reason(body: Any) -> str:
    reason = _body(body, "reason", '"why"')
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason must be a non-empty string.", field="reason")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"reason must be at most {MAX_REASON:,} characters.", field="reason")
    return reason.strip()


def reject(
    session: Session, actor: Actor, review_id: str, reason: str, now: datetime
) -> tuple[Review, Task]:
    """The task's labels are superseded and it is labeled again by other workers, who see
    ``reason`` (``read_reason``)."""
    review, task = _decide(session, actor, review_id, now, "rejected", comment=reason)
    rework.relabel(session, task, now, {"review_comment": reason})
    session.flush()
    return review, task
