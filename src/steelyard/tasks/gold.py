"""Evaluation (hidden gold) and training (onboarding) tasks, stored for the workflow engine.

Created in the same three steps as other tasks (``tasks.create``): read the body, check its
params and responses against the project's params outside any transaction, then store it in a
short write that only compares the project's params version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import ValidationError
from steelyard.projects import service as projects
from steelyard.projects.params import ParamsChanged, ProjectDefaults
from steelyard.tasks.models import QualityTask
from steelyard.tasktypes import registry
from steelyard.tasktypes.base import TaskTypeSpec
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


@dataclass(frozen=True, slots=True)
class NewQualityTask:
    """An evaluation or training task's body, read without the database."""

    kind: str
    type_name: str
    spec: TaskTypeSpec
    alias: str | None
    project_name: str
    own_params: dict[str, Any]
    expected_response: Any
    initial_response: Any
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CheckedQualityTask:
    """Its params merged over the project's and checked, and its responses checked against
    them: done before the write transaction, against ``project`` at its params version."""

    project: ProjectDefaults
    params: dict[str, Any]
    expected_response: dict[str, Any]
    initial_response: dict[str, Any] | None


def read_quality_task(kind: str, type_name: str, body: Any) -> NewQualityTask:
    spec = registry.get(type_name)
    body = json_object(body)
    project_name = require_str(body, "project", max_length=300)
    if "expected_response" not in body:
        raise ValidationError("'expected_response' is required.", field="expected_response")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationError("'metadata' must be a JSON object.", field="metadata")
    lowered = type_name.lower()
    return NewQualityTask(
        kind=kind,
        type_name=lowered,
        spec=spec,
        alias=lowered if lowered in spec.aliases else None,
        project_name=project_name,
        own_params={k: v for k, v in body.items() if k not in _NOT_PARAMS},
        expected_response=body["expected_response"],
        initial_response=body.get("initial_response"),
        metadata=metadata,
    )


def check_quality_task(new: NewQualityTask, project: ProjectDefaults) -> CheckedQualityTask:
    """The large part, pure: merge and check the params, check the responses against them."""
    spec = new.spec
    defaults = {k: v for k, v in project.params.items() if k != "instruction"}
    merged = spec.merge_params(defaults, new.own_params, alias=new.alias)
    params = spec.validate_params(merged, alias=new.alias)
    expected = _response(spec, params, new.expected_response, "expected_response")
    initial = None
    if new.initial_response is not None:
        initial = _response(spec, params, new.initial_response, "initial_response")
    return CheckedQualityTask(project, params, expected, initial)


def insert_quality_task(
    session: Session, actor: Actor, new: NewQualityTask, checked: CheckedQualityTask, now: datetime
) -> QualityTask:
    """Store a checked task; ``ParamsChanged`` (nothing written) when the project is no longer
    the one, at the params version, it was checked against."""
    project = projects.project_ref(session, actor, name=new.project_name)
    if (project.id, project.version) != (checked.project.id, checked.project.version):
        raise ParamsChanged()
    task = QualityTask(
        org_id=actor.org_id,
        is_test=actor.is_test,
        kind=new.kind,
        type=new.type_name,
        project_id=project.id,
        params=checked.params,
        expected_response=checked.expected_response,
        initial_response=checked.initial_response,
        metadata_=new.metadata,
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
