"""Batch completion, and every change after which a batch may be complete.

A batch completes when it is in progress, has tasks, and none of them is pending; its callback
is queued in the same transaction. The rule reads the tasks' counts and writes the batch, so it
belongs to neither domain: ``tasks`` builds on ``projects`` (a task names its project and its
batch) and ``projects`` knows nothing of tasks (``lint-imports`` holds both to that). So the
changes that can make the rule true go through here: a task completed (by a worker, or at
create in the test environment) or canceled, a batch finalized or resumed; and a batch
canceled, which cancels its pending tasks. The edges (API, CLI, jobs) and the workflow's submit
call these, never the ``tasks`` or ``projects`` steps they are made of.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import InvalidState
from steelyard.jobs import outbox
from steelyard.projects import service as projects
from steelyard.projects.models import Batch
from steelyard.tasks import create
from steelyard.tasks import service as tasks
from steelyard.tasks.models import Task, TaskRow
from steelyard.tasks.repository import batch_counts

# --- tasks -----------------------------------------------------------------------------------


def complete_task(
    session: Session,
    task: Task,
    response: dict[str, Any],
    now: datetime,
    *,
    confidence: float | None = None,
) -> None:
    """Complete a pending task (its callback queued) and its batch if that was the last one."""
    tasks.set_completed(session, task, response, now, confidence=confidence)
    task_finished(session, task, now)


def complete_pending_task(
    session: Session,
    seq: int,
    response: dict[str, Any],
    now: datetime,
    *,
    confidence: float | None = None,
) -> None:
    """``complete_task`` for a worker's submit: the task by ``seq``, no ORM object loaded.

    Its batch is looked at only when this task left its scope's pending counter (project,
    batch, type) at zero: a batch completes only once every such counter is at zero, and the
    transaction that zeroes the last of them sees that (see ``maybe_complete_batch``). Every
    other completion skips the batch row, whose lock would otherwise serialize all the
    completions of a batch (PostgreSQL) behind one row.
    """
    done = tasks.complete_pending(session, seq, response, now, confidence=confidence)
    if done.batch_id is not None and done.pending_left <= 0:
        batch = session.get(Batch, done.batch_id)
        if batch is not None:
            maybe_complete_batch(session, batch, now)


def cancel_task(
    session: Session, actor: Actor, task_id: str, *, clear_unique_id: bool, now: datetime
) -> Task:
    """Cancel a pending task and complete its batch if that was the last one pending."""
    task = tasks.set_canceled(session, actor, task_id, clear_unique_id=clear_unique_id, now=now)
    task_finished(session, task, now)
    session.flush()
    return task


def insert_task(
    session: Session, actor: Actor, new: create.NewTask, checked: create.CheckedTask, now: datetime
) -> create.NamedTask:
    """``tasks.create.insert_task``; a test task, complete from the start, may complete its
    batch. A live task is left as inserted: nothing is read for it."""
    named = create.insert_task(session, actor, new, checked, now)
    if named.task.status != "pending":
        task_finished(session, named.task, now)
    return named


def task_finished(session: Session, task: Task | TaskRow, now: datetime) -> None:
    """A task left ``pending``: its batch may be complete."""
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None:
            maybe_complete_batch(session, batch, now)


# --- batches ---------------------------------------------------------------------------------


def finalize_batch(session: Session, actor: Actor, name: str, now: datetime) -> Batch:
    """staging → in_progress; idempotent otherwise.

    Finalizing an in-progress batch is a no-op, as Scale's own tests expect. So is finalizing a
    completed one: with a test key every task completes as it is created, so the batch is
    already complete by the time the customer's script finalizes it (§11 scenario 2), and
    "no more tasks are coming" is true of a finished batch anyway.
    """
    batch = projects.get_batch(session, actor, name, for_update=True)
    if batch.status == "staging":
        batch.status = "in_progress"
        batch.updated_at = now
        session.flush()
    maybe_complete_batch(session, batch, now)
    return batch


def resume_batch(session: Session, actor: Actor, batch: Batch, now: datetime) -> Batch:
    """paused → in_progress (v2); complete at once if its tasks finished meanwhile."""
    if batch.status != "paused":
        raise InvalidState(
            f"Batch '{batch.name}' is {batch.status}; only a paused batch can be resumed.",
            field="batch_id",
        )
    batch.status = "in_progress"
    batch.updated_at = now
    session.flush()
    maybe_complete_batch(session, batch, now)
    return batch


def cancel_batch(session: Session, actor: Actor, batch: Batch, now: datetime) -> tuple[Batch, int]:
    """Cancel the batch and its pending tasks (v2); returns the batch and how many were
    canceled. A canceled batch never completes, so its tasks' counts are not looked at."""
    if batch.status in ("completed", "canceled"):
        raise InvalidState(
            f"Batch '{batch.name}' is {batch.status}; it cannot be canceled.", field="batch_id"
        )
    batch.status = "canceled"
    batch.updated_at = now
    session.flush()
    return batch, tasks.cancel_pending_in_batch(session, batch, now)


def maybe_complete_batch(session: Session, batch: Batch, now: datetime) -> None:
    """An in-progress batch completes when it has tasks and none of them is pending.

    The batch row is locked before counting: two transactions finishing the last two pending
    tasks would otherwise each see the other's task still pending, and neither would complete
    the batch (PostgreSQL, read committed). The lock makes the second one count after the
    first commits. ``complete_pending_task`` comes here only from the transaction that zeroed
    a pending counter: of the transactions that zero the batch's last counters, the last to
    take this lock counts after all the others have committed, so one of them completes it.
    """
    session.flush()
    session.refresh(batch, with_for_update=True)
    if batch.status != "in_progress":
        return
    counts = batch_counts(session, batch)
    if counts["pending"] > 0 or sum(counts.values()) == 0:
        return
    batch.status = "completed"
    batch.completed_at = now
    batch.updated_at = now
    if batch.callback:
        outbox.enqueue(
            session,
            outbox.BATCH_CALLBACK,
            {"batch_id": batch.id},
            org_id=batch.org_id,
            now=now,
        )
