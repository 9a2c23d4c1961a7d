"""Metadata updates for the v2 API: replace, or deep-merge into what is there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.tasks import service
from steelyard.tasks.models import Task
from steelyard.validation import deep_merge, require_metadata


def update_task_metadata(
    session: Session, actor: Actor, task_id: str, metadata: Any, *, merge: bool, now: datetime
) -> Task:
    metadata = require_metadata(metadata)
    if merge:
        task = service.get_task(session, actor, task_id, for_update=True)
        metadata = deep_merge(task.metadata_ or {}, metadata)
    return service.set_metadata(session, actor, task_id, metadata, now)
