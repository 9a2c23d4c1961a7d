"""Batch lookups by id or name, offset-paged listing, and pause / resume / cancel (v2 API).

Internal batch statuses: ``staging``, ``in_progress``, ``completed``, ``paused``, ``canceled``.
Workers must not receive the tasks of a paused batch; cancelling a batch cancels its pending
tasks one by one through the tasks service (counters, callbacks and batch completion included).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import InvalidState, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch, Project
from steelyard.tasks import service as tasks
from steelyard.tasks.metadata import deep_merge, require_metadata
from steelyard.tasks.models import Task

STATUSES = ("staging", "in_progress", "completed", "paused", "canceled")


def _batches(actor: Actor) -> Select[Batch]:
    return select(Batch).where(Batch.org_id == actor.org_id, Batch.is_test == actor.is_test)


def resolve_project(
    session: Session, actor: Actor, project_id: str | None, project_name: str | None
) -> Project | None:
    """The project named by id or name (never both); None when neither is given."""
    if project_id and project_name:
        raise ValidationError("Give project_id or project_name, not both.", field="project_id")
    if project_id:
        return projects.get_project_by_id(session, actor, project_id)
    if project_name:
        return projects.get_project(session, actor, project_name)
    return None


def resolve_batch(
    session: Session,
    actor: Actor,
    batch_id: str | None,
    batch_name: str | None,
    *,
    for_update: bool = False,
) -> Batch | None:
    """The batch named by id or name (never both); None when neither is given."""
    if batch_id and batch_name:
        raise ValidationError("Give batch_id or batch_name, not both.", field="batch_id")
    if batch_name:
        return projects.get_batch(session, actor, batch_name, for_update=for_update)
    if batch_id:
        stmt = _batches(actor).where(Batch.id == batch_id)
        if for_update:
            stmt = stmt.with_for_update()
        batch = session.scalar(stmt)
        if batch is None:
            raise NotFound(f"No batch with id '{batch_id}'.", field="batch_id")
        return batch
    return None


def require_batch(
    session: Session,
    actor: Actor,
    batch_id: str | None,
    batch_name: str | None,
    *,
    for_update: bool = False,
) -> Batch:
    batch = resolve_batch(session, actor, batch_id, batch_name, for_update=for_update)
    if batch is None:
        raise ValidationError("batch_id or batch_name is required.", field="batch_id")
    return batch


def require_project(
    session: Session, actor: Actor, project_id: str | None, project_name: str | None
) -> Project:
    project = resolve_project(session, actor, project_id, project_name)
    if project is None:
        raise ValidationError("project_id or project_name is required.", field="project_id")
    return project


# --- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFilters:
    project_id: str | None = None
    status: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None


@dataclass(frozen=True)
class BatchPage:
    batches: list[Batch]
    next_token: str | None


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def decode_offset(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("o") or not raw[1:].isdigit() or len(raw) > 12:
            raise ValueError
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "next_token is not a token this server issued.", field="next_token"
        ) from None


def page(
    session: Session, actor: Actor, f: BatchFilters, *, limit: int, token: str | None
) -> BatchPage:
    if f.status is not None and f.status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}.", field="status")
    stmt = _batches(actor)
    if f.project_id is not None:
        stmt = stmt.where(Batch.project_id == f.project_id)
    if f.status is not None:
        stmt = stmt.where(Batch.status == f.status)
    if f.created_after is not None:
        stmt = stmt.where(Batch.created_at >= f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(Batch.created_at <= f.created_before)
    if f.completed_after is not None:
        stmt = stmt.where(Batch.completed_at >= f.completed_after)
    if f.completed_before is not None:
        stmt = stmt.where(Batch.completed_at <= f.completed_before)
    offset = decode_offset(token) if token else 0
    rows = list(
        session.scalars(stmt.order_by(Batch.created_at, Batch.id).offset(offset).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return BatchPage(rows, encode_offset(offset + limit) if more else None)


# --- lifecycle -------------------------------------------------------------------------------


def pause(session: Session, actor: Actor, batch: Batch, now: datetime) -> Batch:
    if batch.status != "in_progress":
        raise InvalidState(
            f"Batch '{batch.name}' is {batch.status}; only an in-progress batch can be paused.",
            field="batch_id",
        )
    batch.status = "paused"
    batch.updated_at = now
    session.flush()
    return batch


def resume(session: Session, actor: Actor, batch: Batch, now: datetime) -> Batch:
    if batch.status != "paused":
        raise InvalidState(
            f"Batch '{batch.name}' is {batch.status}; only a paused batch can be resumed.",
            field="batch_id",
        )
    batch.status = "in_progress"
    batch.updated_at = now
    session.flush()
    tasks.maybe_complete_batch(session, batch, now)  # its tasks may have finished meanwhile
    return batch


def cancel(session: Session, actor: Actor, batch: Batch, now: datetime) -> tuple[Batch, int]:
    """Cancel the batch and its pending tasks; returns the batch and how many were canceled."""
    if batch.status in ("completed", "canceled"):
        raise InvalidState(
            f"Batch '{batch.name}' is {batch.status}; it cannot be canceled.", field="batch_id"
        )
    # The status changes first: canceling the last pending task must not complete the batch.
    batch.status = "canceled"
    batch.updated_at = now
    session.flush()
    pending = session.scalars(
        select(Task.task_id)
        .where(Task.org_id == actor.org_id, Task.is_test == actor.is_test)
        .where(Task.batch_id == batch.id, Task.status == "pending")
        .order_by(Task.seq)
        # Locked in one go: on PostgreSQL a task a worker completes meanwhile drops out of the
        # set once its lock is released, instead of failing the cancel below.
        .with_for_update()
    ).all()
    for task_id in pending:
        tasks.cancel_task(session, actor, task_id, clear_unique_id=False, now=now)
    return batch, len(pending)


def set_metadata(
    session: Session, actor: Actor, batch: Batch, metadata: Any, *, merge: bool, now: datetime
) -> Batch:
    metadata = require_metadata(metadata)
    if merge:
        metadata = deep_merge(batch.metadata_ or {}, metadata)
    return projects.set_batch_metadata(session, actor, batch.name, metadata, now)
