"""Evaluation (hidden gold) and training (onboarding) tasks, stored for the workflow engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import ValidationError
from steelyard.projects import service as projects
from steelyard.tasks.models import QualityTask
from steelyard.tasktypes import registry
from steelyard.timefmt import iso
from steelyard.validation import json_object, require_str, under

KINDS = ("evaluation", "training")
_NOT_PARAMS = (
    "project",
    "batch",
    "expected_response",
    "initial_response",
    "metadata",
    "unique_id",
    "callback_url",
    "tags",
    "instruction",
)


def create_quality_task(
    session: Session, actor: Actor, kind: str, type_name: str, body: Any, now: datetime
) -> QualityTask:
    spec = registry.get(type_name)
    body = json_object(body)
    project = projects.get_project(session, actor, require_str(body, "project", max_length=300))
    if "expected_response" not in body:
        raise ValidationError("'expected_response' is required.", field="expected_response")
    own = {k: v for k, v in body.items() if k not in _NOT_PARAMS}
    defaults = {k: v for k, v in project.params.items() if k != "instruction"}
    alias = type_name.lower() if type_name.lower() in spec.aliases else None
    params = spec.validate_params(spec.merge_params(defaults, own, alias=alias), alias=alias)
    expected = _response(spec, params, body["expected_response"], "expected_response")
    initial = body.get("initial_response")
    if initial is not None:
        initial = _response(spec, params, initial, "initial_response")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationError("'metadata' must be a JSON object.", field="metadata")
    task = QualityTask(
        org_id=actor.org_id,
        is_test=actor.is_test,
        kind=kind,
        type=type_name.lower(),
        project_id=project.id,
        params=params,
        expected_response=expected,
        initial_response=initial,
        metadata_=metadata,
        created_at=now,
    )
    session.add(task)
    session.flush()
    return task


def _response(spec: Any, params: dict[str, Any], value: Any, field: str) -> dict[str, Any]:
    try:
        result: dict[str, Any] = spec.validate_response(params, value)
        return result
    except ValidationError as exc:
        raise under(field, exc) from None


def quality_task_to_scale(task: QualityTask, project_name: str) -> dict[str, Any]:
    return {
        "id": task.id,
        "kind": task.kind,
        "type": task.type,
        "project": project_name,
        "params": task.params,
        "expected_response": task.expected_response,
        "initial_response": task.initial_response,
        "metadata": task.metadata_ or {},
        "created_at": iso(task.created_at),
    }
