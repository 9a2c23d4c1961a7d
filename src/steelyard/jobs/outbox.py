"""Enqueue a job in the caller's transaction, so it exists exactly when the change does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard.jobs.models import Job

TASK_CALLBACK = "task_callback"
BATCH_CALLBACK = "batch_callback"


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    org_id: str | None,
    now: datetime,
    max_attempts: int = 20,
) -> Job:
    job = Job(
        org_id=org_id,
        kind=kind,
        payload=payload,
        status="queued",
        attempts=0,
        max_attempts=max_attempts,
        run_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    return job
