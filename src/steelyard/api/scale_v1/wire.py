"""Scale v1 wire shapes for projects, batches and teammates (tasks: ``tasks.serialize``)."""

from __future__ import annotations

from typing import Any

from steelyard.accounts.team import Teammate
from steelyard.projects.models import Batch, Project
from steelyard.timefmt import iso


def project(p: Project) -> dict[str, Any]:
    current = p.param_history[-1] if p.param_history else {}
    doc: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "type": p.type,
        "param_history": p.param_history,
        "params": p.params,
        "version": current.get("version", 0),
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "rapid": p.rapid,
        "studio": p.studio,
        "archived": p.archived,
        "is_test": p.is_test,
    }
    if "instruction" in current:
        doc["instruction"] = current["instruction"]
    if p.dataset_id:
        doc["datasetId"] = p.dataset_id
    return doc


def batch(b: Batch, project_name: str, counts: dict[str, int] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": b.id,
        "name": b.name,
        "status": b.status,
        "project": project_name,
        "created_at": iso(b.created_at),
        "updated_at": iso(b.updated_at),
        "completed_at": iso(b.completed_at) if b.completed_at else None,
        "metadata": b.metadata_ or {},
        "callback": b.callback or "",
        "calibration_batch": b.calibration_batch,
        "self_label_batch": b.self_label_batch,
        "archived": b.archived,
    }
    if counts is not None:
        doc["tasks_pending"] = counts["pending"]
        doc["tasks_completed"] = counts["completed"]
        doc["tasks_error"] = counts["error"]
        doc["tasks_canceled"] = counts["canceled"]
    return doc


def teammate(t: Teammate) -> dict[str, Any]:
    return {
        "email": t.email,
        "role": t.role,
        "company": None,
        "firstName": t.first_name,
        "lastName": t.last_name,
        "isStudioLabeler": t.role == "labeler",
        # Set for a pending invitation (when it lapses), as Scale lists invited teammates.
        "expiry": iso(t.expiry) if t.expiry else None,
    }
