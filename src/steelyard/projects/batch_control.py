"""Batch lookups by id or name, offset-paged listing, pause and metadata (v2 API).

Internal batch statuses: ``staging``, ``in_progress``, ``completed``, ``paused``, ``canceled``.
Workers must not receive the tasks of a paused batch. Resume and cancel touch the batch's tasks
(a resumed batch may be complete; a canceled one cancels its pending tasks), so they are
``workflow.batches``'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard import pagination
from steelyard.accounts.schemas import Actor
from steelyard.errors import InvalidState, NotFound, ValidationError
from steelyard.projects import service as projects
from steelyard.projects.models import Batch, Project
from steelyard.validation import deep_merge, require_metadata

STATUSES = ("staging", "in_progress", "completed", "paused", "canceled")


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
        stmt = projects.readable_batches(actor).where(Batch.id == batch_id)
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


def page(
    session: Session, actor: Actor, f: BatchFilters, *, limit: int, token: str | None
) -> BatchPage:
    if f.status is not None and f.status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}.", field="status")
    stmt = projects.readable_batches(actor)
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
    offset = pagination.decode("o", token) if token else 0
    rows = list(
        session.scalars(stmt.order_by(Batch.created_at, Batch.id).offset(offset).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return BatchPage(rows, pagination.encode("o", offset + limit) if more else None)


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


def set_metadata(
    session: Session, actor: Actor, batch: Batch, metadata: Any, *, merge: bool, now: datetime
) -> Batch:
    metadata = require_metadata(metadata)
    if merge:
        metadata = deep_merge(batch.metadata_ or {}, metadata)
    return projects.set_batch_metadata(session, actor, batch.name, metadata, now)
