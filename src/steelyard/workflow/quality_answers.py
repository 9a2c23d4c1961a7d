"""A worker's quality leases after ``next`` (``quality_serving``): submit (checked and scored
before the write, stored by compare-and-set), heartbeat, release, skip, and the reaper.

``store_evaluation_answer`` is the one place a hidden-gold answer is stored: worker quality
hooks in there. A quality lease answers the edge's 404 exactly as an unknown assignment does,
so ids tell nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import AlreadySubmitted, InvalidState, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects import workflow_settings
from steelyard.quality import gold_scores
from steelyard.tasks.models import QualityTask
from steelyard.tasktypes import registry
from steelyard.validation import under
from steelyard.workflow import leases, review, worker_models, worker_quality
from steelyard.workflow.aggregation import aggregate
from steelyard.workflow.models import QualityAnswer
from steelyard.workflow.qualification import (
    TRAINING,
    QualificationState,
    qualification_states,
    quality_projects,
)

EVALUATION = "evaluation"


def shown_task_id(item: QualityTask, user_id: str) -> str:
    """A quality item's ``task_id`` for one worker: shaped like a live id (creation time, then
    hex), different per worker, and telling nothing of the item."""
    digest = hashlib.sha256(f"{item.id}:{user_id}".encode()).hexdigest()[:16]
    return f"{int(item.created_at.timestamp()):08x}{digest}"


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
    if answer.status == "submitted":
        return AlreadySubmitted("This assignment is submitted.", field="assignment_id")
    return InvalidState(f"This assignment is {answer.status}.", field="assignment_id")


def end_answers(session: Session, ids: list[str], status: str, **values: Any) -> int:
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
    """Extend the caller's active quality lease (compare-and-set on ``active``, as for live)."""
    leases.check_worker(actor)
    answer = own_answer(session, actor, answer_id)
    moved = session.execute(
        update(QualityAnswer)
        .where(QualityAnswer.id == answer.id, QualityAnswer.status == leases.ACTIVE)
        .values(expires_at=now + timedelta(seconds=lease_seconds))
        .returning(QualityAnswer.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(answer)
    if moved is None:
        raise _not_active(answer)
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
    moved = end_answers(
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
    return end_answers(session, ids, "expired")


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
    #: What decides the status a live task's first label would answer with: what an
    #: evaluation submit says too (``live_status``).
    as_live: AsLive


@dataclass(frozen=True, slots=True)
class AsLive:
    """What a live task of the project would need and do after its first label, were this
    answer that label: its redundancy, its review, the id shown for the item (a sampled
    review hashes it as it hashes a live task's), the worker and the project's stored worker
    model (categorical types, one label per task to start: else it cannot matter)."""

    redundancy: workflow_settings.Redundancy
    review: workflow_settings.Review
    task_id: str
    user_id: str
    model_doc: dict[str, Any] | None = None


def live_status(as_live: AsLive, type_name: str, params: dict[str, Any], response: Any) -> str:
    """``completed`` or ``pending``: what a live task's submit would answer if ``response``
    were its first label, decided as completion decides (more labels needed, adaptive
    redundancy asking for one more, or review holding it), so that a gold answer says the
    same and tells the worker nothing. Pure; cheap for one label."""
    needs = as_live.redundancy
    if needs.labels > 1:
        return "pending"
    labels = [(as_live.user_id, response)]
    model = worker_models.parse(as_live.model_doc)
    outcome = (
        worker_models.categorical_outcome(
            model, labels, target_confidence=needs.target_confidence, max_labels=needs.max_labels
        )
        if model is not None
        else None
    )
    if outcome is None:
        outcome = aggregate(type_name, params, labels)
    target = needs.target_confidence
    more = (
        outcome.more
        if outcome.more is not None
        else (target is not None and outcome.confidence < target)
    )
    if target is not None and more and needs.max_labels > 1:
        return "pending"
    mode = as_live.review
    held = review.reason_for(mode.mode, mode.value, as_live.task_id, outcome.confidence)
    return "completed" if held is None else "pending"


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
    needs = workflow.redundancy
    # Only a hidden gold answer imitates a live one (training says what it is).
    categorical = answer.kind == EVALUATION and registry.get(item.type).aggregator == "categorical"
    doc = (
        worker_models.stored(session, answer.project_id)
        if needs.labels == 1 and categorical
        else None
    )
    as_live = AsLive(
        needs, workflow.review, shown_task_id(item, answer.user_id), answer.user_id, doc
    )
    return QualityTarget(
        answer.id,
        answer.kind,
        item.type,
        item.params or {},
        item.expected_response,
        answer.project_id,
        as_live,
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
        live_status(target.as_live, target.type, target.params, response),
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
        stored = store_evaluation_answer(session, actor, answer, values, now)
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
    session: Session, actor: Actor, answer: QualityAnswer, values: dict[str, Any], now: datetime
) -> bool:
    """The one place a worker's evaluation (hidden gold) answer is stored, scored
    (``values``: response, score, correct, status ``submitted``), and the worker's quality
    checked against the project's threshold in the same transaction
    (``worker_quality.after_gold_answer``: it may pause them from the project). False when the
    lease was no longer active."""
    if not _store(session, answer, values):
        return False
    session.flush()
    worker_quality.after_gold_answer(session, actor.org_id, answer.project_id, answer.user_id, now)
    return True


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
