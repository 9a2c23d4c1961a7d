"""A worker's submit: the response checked before the write, stored as a label, and the task
completed once it has the labels it needs.

Aggregating can be real work (box matching), so it is done before the write when it can be:
``submit_target`` (a read transaction) sees whether this label would be the task's last and, if
so, reads the labels already stored; ``check_submission`` (no transaction) checks the response
and aggregates them with it. The write (``submit``) stores the label by compare-and-set on the
assignment, counts it on the task, and completes the task with that outcome when the count is
the one it was computed for (labels are never removed, so the same count means the same
labels). When it is not (another worker's label landed in between), the write aggregates the
labels itself: rare, and for the usual k of a few labels cheap.

Categorical tasks of a project with a fitted worker model (``worker_models``: fitted in the
background, never here) are aggregated under it: the stored document is read with the task
(read transaction) and applied in ``check_submission``.

Adaptive redundancy: a task whose outcome is below its ``target_confidence`` with fewer than
``labels_max`` labels needs one more label instead of completing (the stopping rule of
``quality.adaptive``: confident, or at the maximum; ``quality.adaptive.decide`` itself, with the
project's calibrator when it has one, where a worker model decided). The task then stays
pending with ``labels_needed`` one higher, set by compare-and-set in the submit's transaction.

Review: a task whose project reviews it waits for a reviewer instead of completing
(``review.reason_for`` and ``review.hold``; its setting is on the task row the count returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.errors import InvalidState, ValidationError
from steelyard.tasks.models import Task
from steelyard.tasktypes import registry
from steelyard.validation import under
from steelyard.workflow import batches, leases, review, worker_models
from steelyard.workflow.aggregation import Labels, Outcome, aggregate
from steelyard.workflow.models import Assignment, Label


@dataclass(frozen=True, slots=True)
class SubmitTarget:
    """What a worker's response is checked against: its task's type and params, read before
    the write transaction (``submit_target``). A task's params never change afterwards.
    ``others``: the labels already stored, when this one would complete the task."""

    assignment_id: str
    task_seq: int
    type: str
    params: dict[str, Any]
    user_id: str
    others: tuple[tuple[str, dict[str, Any]], ...] | None = None
    labels_max: int = 1
    target_confidence: float | None = None
    #: The project's stored worker model, read when this label would be the last.
    model_doc: dict[str, Any] | None = None
    #: When the lease began (it never changes): the write records how long it was held.
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """A worker's response, checked (``check_submission``), and the task's outcome if this
    label is its last (``outcome``, computed from ``outcome.n_labels`` labels)."""

    assignment_id: str
    task_seq: int
    response: dict[str, Any]
    outcome: Outcome | None = None
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a submit stored (``submit``)."""

    assignment_id: str
    task_seq: int
    task_id: str
    submitted_at: datetime
    #: "completed" when this label was the last the task needed; else "pending" (it waits for
    #: other labels, or needs one more: adaptive redundancy).
    status: str


def _check_body(body: Any) -> None:
    if not isinstance(body, dict) or "response" not in body:
        raise ValidationError('The body must be {"response": {...}}.', field="response")


# Built once: a submit runs them for every label (building and cache-keying a statement per call
# cost more than running it). Both ask for the caller's own assignment: another worker's, or
# another organization's, is not found.
_TARGET = (
    select(
        Assignment.task_seq,
        Assignment.user_id,
        Assignment.status.label("assignment_status"),
        Assignment.started_at,
        Task.status,
        Task.type,
        Task.params,
        Task.labels_done,
        Task.labels_needed,
        Task.labels_max,
        Task.target_confidence,
        Task.project_id,
    )
    .join(Task, Task.seq == Assignment.task_seq)
    .where(
        Assignment.id == bindparam("assignment_id"),
        Assignment.org_id == bindparam("org_id"),
        Assignment.user_id == bindparam("user_id"),
        Task.org_id == bindparam("org_id"),
    )
)


def submit_target(
    session: Session, actor: Actor, assignment_id: str, body: Any, now: datetime
) -> SubmitTarget:
    """Read (a read transaction is enough) the assignment and its task's params in one
    statement; refuse at once what the write would refuse, before the response is checked."""
    _check_body(body)
    conn = session.connection()
    row = conn.execute(
        _TARGET,
        {"assignment_id": assignment_id, "org_id": actor.org_id, "user_id": actor.user_id or ""},
    ).first()
    if row is None:
        raise leases.no_assignment(assignment_id)
    if row.assignment_status != "active":
        raise leases.not_active(row.assignment_status)
    _check_pending(row.status)
    others = None
    doc = None
    if row.labels_done + 1 >= row.labels_needed:
        # This label would be the last: aggregate before the write (nothing to read for k = 1).
        others = tuple(_labels(session, row.task_seq)) if row.labels_done else ()
        if _categorical(row.type):
            doc = worker_models.stored(session, row.project_id)
    return SubmitTarget(
        assignment_id,
        row.task_seq,
        row.type,
        row.params,
        row.user_id,
        others,
        row.labels_max,
        row.target_confidence,
        doc,
        row.started_at,
    )


def _categorical(type_name: str) -> bool:
    return registry.get(type_name).aggregator == "categorical"


def _outcome(
    type_name: str,
    params: dict[str, Any],
    labels: Labels,
    model: worker_models.ProjectModel | None,
    target_confidence: float | None,
    labels_max: int,
) -> Outcome:
    """Under the project's worker model when it has one that reads these labels, else by the
    type's aggregator with the default reliability."""
    if model is not None:
        outcome = worker_models.categorical_outcome(
            model, labels, target_confidence=target_confidence, max_labels=labels_max
        )
        if outcome is not None:
            return outcome
    return aggregate(type_name, params, labels)


def check_submission(target: SubmitTarget, body: Any) -> Submission:
    """The response checked against the task's params, and the task aggregated if this label
    would be its last: the large part of a submit, pure, so the edge runs it with no
    transaction open (in a worker thread)."""
    _check_body(body)
    try:
        response = registry.get(target.type).validate_response(target.params, body["response"])
    except ValidationError as exc:
        raise under("response", exc) from None
    outcome = None
    if target.others is not None:
        labels = [*target.others, (target.user_id, response)]
        model = worker_models.parse(target.model_doc)
        outcome = _outcome(
            target.type, target.params, labels, model, target.target_confidence, target.labels_max
        )
    return Submission(target.assignment_id, target.task_seq, response, outcome, target.started_at)


_LABELS = (
    select(Label.user_id, Label.response)
    .where(Label.task_seq == bindparam("task_seq"), Label.superseded.is_(False))
    .order_by(Label.created_at, Label.id)
)


def _labels(session: Session, task_seq: int) -> list[tuple[str, dict[str, Any]]]:
    rows = session.connection().execute(_LABELS, {"task_seq": task_seq})
    return [(user, response) for user, response in rows]


def _check_pending(status: str) -> None:
    if status != "pending":
        raise InvalidState(f"The task is {status} and takes no more labels.", field="task")


_SUBMIT = (
    update(Assignment)
    .where(
        Assignment.id == bindparam("p_assignment_id"),
        Assignment.org_id == bindparam("p_org_id"),
        Assignment.user_id == bindparam("p_user_id"),
        Assignment.status == leases.ACTIVE,
    )
    .values(status="submitted", submitted_at=bindparam("p_now"), active_seconds=bindparam("p_held"))
    .returning(Assignment.task_seq)
)
_STARTED = select(Assignment.started_at).where(Assignment.id == bindparam("p_assignment_id"))
_COUNT_LABEL = (
    update(Task)
    .where(Task.seq == bindparam("p_seq"), Task.status == "pending")
    .values(labels_done=Task.labels_done + 1, leases_open=Task.leases_open - 1)
    .returning(
        Task.labels_done,
        Task.labels_needed,
        Task.labels_max,
        Task.target_confidence,
        Task.type,
        Task.project_id,
        Task.task_id,
        Task.review_mode,
        Task.review_value,
    )
)
_TASK_STATUS = select(Task.status).where(Task.seq == bindparam("p_seq"))
_INSERT_LABEL = insert(Label).values(
    id=bindparam("p_id"),
    org_id=bindparam("p_org_id"),
    task_seq=bindparam("p_seq"),
    assignment_id=bindparam("p_assignment_id"),
    user_id=bindparam("p_user_id"),
    response=bindparam("p_response", type_=Label.response.type),
    created_at=bindparam("p_now"),
    superseded=False,
)
_TASK_PARAMS = select(Task.params).where(Task.seq == bindparam("p_seq"))
_ONE_MORE = (
    update(Task)
    .where(Task.seq == bindparam("p_seq"), Task.labels_needed == bindparam("p_needed"))
    .values(labels_needed=Task.labels_needed + 1, updated_at=bindparam("p_now"))
)


def submit(session: Session, actor: Actor, submission: Submission, now: datetime) -> Submitted:
    """Store a checked response as the assignment's label; complete the task if it was the
    last one it needs.

    Plain statements on the connection, built once, and no ORM objects: this runs under the
    write lock for every label (a few statements, each a compare-and-set or an insert).
    """
    user_id = leases.check_worker(actor)
    conn = session.connection()
    started = submission.started_at
    if started is None:
        started = conn.scalar(_STARTED, {"p_assignment_id": submission.assignment_id})
    moved = conn.execute(
        _SUBMIT,
        {
            "p_assignment_id": submission.assignment_id,
            "p_org_id": actor.org_id,
            "p_user_id": user_id,
            "p_now": now,
            "p_held": leases.elapsed(started, now) if started is not None else None,
        },
    ).first()
    if moved is None:
        # Not the caller's, or moved on since it was read (reclaimed, released): say which.
        raise leases.not_active(leases.own_assignment(session, actor, submission.assignment_id))
    seq = moved.task_seq
    # The label before the count: the count locks the task's row (which the task's other
    # workers' submits wait for, on PostgreSQL) until the commit, so it comes as late as it can.
    conn.execute(
        _INSERT_LABEL,
        {
            "p_id": new_id(),
            "p_org_id": actor.org_id,
            "p_seq": seq,
            "p_assignment_id": submission.assignment_id,
            "p_user_id": user_id,
            "p_response": submission.response,
            "p_now": now,
        },
    )
    counted = conn.execute(_COUNT_LABEL, {"p_seq": seq}).first()
    if counted is None:
        # Refusals roll the transaction back: the assignment stays as it was.
        _check_pending(conn.scalar(_TASK_STATUS, {"p_seq": seq}) or "gone")
        raise AssertionError("unreachable")
    done, needed, most, target, type_name, project_id, task_id, review_mode, review_value = counted
    pending = Submitted(submission.assignment_id, seq, task_id, now, "pending")
    if done < needed:
        return pending
    outcome = submission.outcome
    if outcome is None or outcome.n_labels != done:
        # Rare (another label landed in between): the stored model is small and its parse
        # cached per fit, so this stays a few reads.
        params = conn.scalar(_TASK_PARAMS, {"p_seq": seq})
        doc = worker_models.stored(session, project_id) if _categorical(type_name) else None
        outcome = _outcome(
            type_name,
            params or {},
            _labels(session, seq),
            worker_models.parse(doc),
            target,
            most,
        )
    more = (
        outcome.more
        if outcome.more is not None
        else (target is not None and outcome.confidence < target)
    )
    if target is not None and more and done < most:
        # Adaptive: not confident yet and more labels allowed; one more slot opens. Compared
        # with the count this decision was made for (the row is ours since the count above).
        conn.execute(_ONE_MORE, {"p_seq": seq, "p_needed": needed, "p_now": now})
        return pending
    waits = (
        None
        if review_mode is None
        else review.reason_for(review_mode, review_value, task_id, outcome.confidence)
    )
    if waits is not None and project_id is not None:
        review.hold(
            session,
            org_id=actor.org_id,
            project_id=project_id,
            task_seq=seq,
            reason=waits,
            candidate=outcome.response,
            confidence=outcome.confidence,
            now=now,
        )
        return pending
    batches.complete_pending_task(
        session, seq, outcome.response, now, confidence=outcome.confidence
    )
    return Submitted(submission.assignment_id, seq, task_id, now, "completed")
