"""Tasks, batches and projects in Scale's v2 wire shape (what ``scaleapi``'s v2 client parses).

The v2 client validates with pydantic: task status is one of pending, completed, canceled,
error, deleted; batch status one of staging, in_progress, completed, paused, cancelled (double
L); ``project``/``batch`` are ids unless expanded into objects.
"""

from __future__ import annotations

from typing import Any

from steelyard.errors import ValidationError
from steelyard.projects.models import Batch, Project
from steelyard.tasks.models import Task, TaskRow
from steelyard.timefmt import iso

#: Internal batch status → v2 enum.
BATCH_STATUS_V2 = {
    "staging": "staging",
    "in_progress": "in_progress",
    "completed": "completed",
    "paused": "paused",
    "canceled": "cancelled",
}

TASK_EXPANDS = ("project", "batch")
BATCH_EXPANDS = ("project",)
OPTS = ("annotation_details", "attachment_details", "model_parameters", "submissions")


def check_choices(values: list[str], allowed: tuple[str, ...], field: str) -> set[str]:
    for value in values:
        if value not in allowed:
            raise ValidationError(
                f"{field} must be among {', '.join(allowed)}; got '{value}'.", field=field
            )
    return set(values)


def project(p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "created_at": iso(p.created_at), "types": [p.type]}


def batch(b: Batch, *, project_obj: Project | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": b.id,
        "name": b.name,
        "project": project(project_obj) if project_obj is not None else b.project_id,
        "created_at": iso(b.created_at),
        "status": BATCH_STATUS_V2.get(b.status, b.status),
        "metadata": b.metadata_ or {},
    }
    if b.completed_at is not None:
        doc["completed_at"] = iso(b.completed_at)
    if b.callback:
        doc["callback"] = b.callback
    return doc


def task(
    t: Task | TaskRow,
    *,
    project_obj: Project | None = None,
    batch_obj: Batch | None = None,
) -> dict[str, Any]:
    """A completed task also carries its v1 ``response`` (the v2 client ignores extra keys)."""
    doc: dict[str, Any] = {
        "task_id": t.task_id,
        "project": project(project_obj) if project_obj is not None else (t.project_id or ""),
        "status": t.status,
        "created_at": iso(t.created_at),
        "metadata": t.metadata_ or {},
        "threads": [],
        "errors": [],
    }
    if batch_obj is not None:
        doc["batch"] = batch(batch_obj)
    elif t.batch_id is not None:
        doc["batch"] = t.batch_id
    if t.completed_at is not None:
        doc["completed_at"] = iso(t.completed_at)
    if t.status == "completed" and t.response is not None:
        doc["response"] = t.response
    return doc
