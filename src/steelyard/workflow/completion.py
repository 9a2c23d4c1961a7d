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
(``review.complete_or_hold``, the one place; its setting is on the task row already read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.attributes import set_committed_value

from steelyard.accounts.schemas import Actor
from steelyard.errors import InvalidState, ValidationError
from steelyard.tasks.models import Task
from steelyard.tasktypes import registry
from steelyard.validation import under
from steelyard.workflow import leases, review, worker_models
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


@dataclass(frozen=True, slots=True)
class Submission:
    """A worker's response, checked (``check_submission``), and the task's outcome if this
    label is its last (``outcome``, computed from ``outcome.n_labels`` labels)."""

    assignment_id: str
    task_seq: int
    response: dict[str, Any]
    outcome: Outcome | None = None


def _check_body(body: Any) -> None:
    if not isinstance(body, dict) or "response" not in body:
        raise ValidationError('The body must be {"response": {...}}.', field="response")


def submit_target(
    session: Session, actor: Actor, assignment_id: str, body: Any, now: datetime
) -> SubmitTarget:
    """Read (a read transaction is enough) the assignment and its task's params; refuse at once
    what the write would refuse, before the response is checked."""
    _check_body(body)
    assignment = leases.own_assignment(session, actor, assignment_id)
    if assignment.status != "active":
        raise leases.not_active(assignment)
    task = session.execute(
        select(
            Task.status,
            Task.type,
            Task.params,
            Task.labels_done,
            Task.labels_needed,
            Task.labels_max,
            Task.target_confidence,
            Task.project_id,
        ).where(Task.seq == assignment.task_seq, Task.org_id == actor.org_id)
    ).one()
    _check_pending(task.status)
    others = None
    doc = None
    if task.labels_done + 1 >= task.labels_needed:
        # This label would be the last: aggregate before the write (nothing to read for k = 1).
        others = tuple(_labels(session, assignment.task_seq)) if task.labels_done else ()
        if _categorical(task.type):
            doc = worker_models.stored(session, task.project_id)
    return SubmitTarget(
        assignment.id,
        assignment.task_seq,
        task.type,
        task.params,
        assignment.user_id,
        others,
        task.labels_max,
        task.target_confidence,
        doc,
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
    return Submission(target.assignment_id, target.task_seq, response, outcome)


def _labels(session: Session, task_seq: int) -> list[tuple[str, dict[str, Any]]]:
    rows = session.execute(
        select(Label.user_id, Label.response)
        .where(Label.task_seq == task_seq, Label.superseded.is_(False))
        .order_by(Label.created_at, Label.id)
    ).all()
    return [(user, response) for user, response in rows]


def _check_pending(status: str) -> None:
    if status != "pending":
        raise InvalidState(f"The task is {status} and takes no more labels.", field="task")


def submit(
    session: Session, actor: Actor, submission: Submission, now: datetime
) -> tuple[Assignment, Task | None]:
    """Store a checked response as the assignment's label; complete the task if it was the
    last one it needs. Returns the assignment and, when it completed, the task."""
    leases.check_worker(actor)
    assignment = leases.own_assignment(session, actor, submission.assignment_id)
    values = {
        "status": "submitted",
        "submitted_at": now,
        "active_seconds": leases.elapsed(assignment.started_at, now),
    }
    moved = session.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == leases.ACTIVE)
        .values(**values)
        .returning(Assignment.task_seq)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        # Moved on since it was read (reclaimed, released): say what it is now.
        session.refresh(assignment)
        raise leases.not_active(assignment)
    for key, value in values.items():
        set_committed_value(assignment, key, value)
    counted = session.execute(
        update(Task)
        .where(Task.seq == assignment.task_seq, Task.status == "pending")
        .values(labels_done=Task.labels_done + 1, leases_open=Task.leases_open - 1)
        .returning(
            Task.labels_done,
            Task.labels_needed,
            Task.labels_max,
            Task.target_confidence,
            Task.type,
            Task.project_id,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if counted is None:
        # Refusals roll the transaction back: the assignment stays as it was.
        status = session.scalar(select(Task.status).where(Task.seq == assignment.task_seq))
        _check_pending(status or "gone")
        raise AssertionError("unreachable")
    session.add(
        Label(
            org_id=actor.org_id,
            task_seq=assignment.task_seq,
            assignment_id=assignment.id,
            user_id=assignment.user_id,
            response=submission.response,
            created_at=now,
        )
    )
    done, needed, most, target, type_name, project_id = counted
    if done < needed:
        session.flush()
        return assignment, None
    outcome = submission.outcome
    if outcome is None or outcome.n_labels != done:
        session.flush()
        # Rare (another label landed in between): the stored model is small and its parse
        # cached per fit, so this stays a few reads.
        params = session.scalar(select(Task.params).where(Task.seq == assignment.task_seq))
        doc = worker_models.stored(session, project_id) if _categorical(type_name) else None
        outcome = _outcome(
            type_name,
            params or {},
            _labels(session, assignment.task_seq),
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
        session.execute(
            update(Task)
            .where(Task.seq == assignment.task_seq, Task.labels_needed == needed)
            .values(labels_needed=needed + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        return assignment, None
    # The params are not read: decoding a large task's params here would hold the write lock.
    task = session.scalar(
        select(Task)
        .where(Task.seq == assignment.task_seq)
        .options(defer(Task.params, raiseload=True))
        .execution_options(populate_existing=True)
    )
    assert task is not None
    completed = review.complete_or_hold(
        session, task, outcome.response, now, confidence=outcome.confidence
    )
    session.flush()
    return assignment, task if completed else None
