"""Metadata updates for the v2 API: replace, or deep-merge into what is there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import ValidationError
from steelyard.tasks import service
from steelyard.tasks.models import Task


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: nested objects merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def require_metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("'metadata' must be a JSON object.", field="metadata")
    return value


def update_task_metadata(
    session: Session, actor: Actor, task_id: str, metadata: Any, *, merge: bool, now: datetime
) -> Task:
    metadata = require_metadata(metadata)
    if merge:
        task = service.get_task(session, actor, task_id, for_update=True)
        metadata = deep_merge(task.metadata_ or {}, metadata)
    return service.set_metadata(session, actor, task_id, metadata, now)
