"""A customer's audit, and the rework a rejection starts.

``audit_task`` records the audit (``tasks.service.audit_task``: verdict, comment, callback) and,
when it rejects a completed live task without a corrected response, sends the task back:

* its response goes to ``prior_responses`` (Scale's field for earlier answers) and the task is
  ``pending`` again, with ``response``, ``confidence`` and ``completed_at`` cleared;
* it needs a fresh round of labels: ``labels_needed = labels_done + k`` (and ``labels_max``
  likewise; its review setting too), where k is the project's redundancy now (its adaptive
  minimum and maximum, or 1 without a project). The counters keep counting every label, so
  the lease rule ``leases_open + labels_done < labels_needed`` stays as it is;
* its labels are kept but marked ``superseded``: the reworked answer is aggregated from the
  fresh labels only, so the rejected answer cannot outvote its correction. The workers who
  gave them are never offered the task again (the lease query excludes anyone with a
  submitted assignment on it);
* a completed batch it belongs to is in progress again, and completes (its callback too) when
  its last task does, as when a new task is added to it.

A reviewer's rejection (``workflow.review``) sends a task back the same way (``relabel``): it
is still pending (its candidate was never its response), so only the fresh round, the
superseded labels and the comment apply.

The worker who takes it sees the comment (``Task.rework``, shown by
``tasks.serialize.task_for_worker``; cleared when the task completes). Its
callbacks: the audit's now (the task as it is when delivered: pending, with the rejected answer
in ``prior_responses``), and the completion's again when the rework completes.

A test task (complete from its creation, never served to workers) and a rejection that brings a
corrected response (``fixed``) are only recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import ValidationError
from steelyard.projects import service as projects
from steelyard.projects import workflow_settings
from steelyard.projects.models import Batch, Project
from steelyard.tasks import service as tasks
from steelyard.tasks.models import Task
from steelyard.workflow.models import Label


def audit_task(
    session: Session, actor: Actor, task_id: str, audit: tasks.Audit, now: datetime
) -> Task:
    """Record the customer's audit; a rejection of a live task sends it back for rework."""
    task = tasks.audit_task(session, actor, task_id, audit, now)
    if not audit.accepted and audit.response is None and not task.is_test:
        send_back(session, task, now, comment=audit.comments)
    return task


def fresh_round(session: Session, task: Task) -> workflow_settings.WorkflowSettings:
    """How many labels the rework needs, and its review: the project's settings as they are
    now."""
    project = session.get(Project, task.project_id) if task.project_id else None
    if project is None:
        return workflow_settings.DEFAULT
    try:
        return workflow_settings.read(project.params)
    except ValidationError:
        # Settings are checked when written; an older project's unreadable ones mean one label.
        return workflow_settings.DEFAULT


def send_back(session: Session, task: Task, now: datetime, *, comment: str | None) -> None:
    """A completed task (locked by the caller) → pending, needing a fresh round of labels."""
    if task.status != "completed":
        raise AssertionError(f"only a completed task is sent back, not a {task.status} one")
    if task.response is not None:
        task.prior_responses = [*task.prior_responses, task.response]
    tasks.count_task(session, task, -1)
    task.status = "pending"
    tasks.count_task(session, task, +1)
    task.response = None
    task.confidence = None
    task.completed_at = None
    relabel(session, task, now, {"audit_comment": comment})
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None and batch.status == "completed":
            projects.reopen_batch(session, batch.id, now)
            session.expire(batch)
    session.flush()


def relabel(session: Session, task: Task, now: datetime, note: dict[str, Any]) -> None:
    """A pending task (locked by the caller) needs a fresh round of labels from other workers,
    who see ``note``; its labels so far are superseded."""
    settings = fresh_round(session, task)
    needs = settings.redundancy
    task.review_mode = None if settings.review.mode == "none" else settings.review.mode
    task.review_value = settings.review.value
    task.rework = note
    task.updated_at = now
    task.labels_needed = task.labels_done + needs.labels
    task.labels_max = task.labels_done + needs.max_labels
    task.target_confidence = needs.target_confidence
    session.execute(
        update(Label)
        .where(Label.task_seq == task.seq, Label.superseded.is_(False))
        .values(superseded=True)
        .execution_options(synchronize_session=False)
    )
