"""Projects (versioned params) and batches (staging → in_progress → completed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import Duplicate, InvalidState, NotFound, ValidationError
from steelyard.projects.models import Batch, Project, current_params
from steelyard.tasks.models import TaskCount
from steelyard.tasktypes import registry
from steelyard.validation import (
    json_object,
    optional_bool,
    optional_dict,
    optional_str,
    require_str,
    under,
)

#: Stored batch statuses. v1 reports them as stored (``canceled``, as every v1 status is
#: spelled); v2 spells that one ``cancelled`` (``tasks.v2wire``).
BATCH_STATUSES = ("staging", "in_progress", "completed", "paused", "canceled")
#: Either API's spelling of a batch status → the stored one: both APIs filter with both.
_BATCH_STATUS_SPELLINGS = {**{s: s for s in BATCH_STATUSES}, "cancelled": "canceled"}
TEMPLATE_TYPES = ("textcollection", "chat", "chatexperimental", "chatlite", "multichat")


# --- projects ------------------------------------------------------------------------------


def _projects(actor: Actor) -> Select[Project]:
    return select(Project).where(Project.org_id == actor.org_id, Project.is_test == actor.is_test)


# Lookups on every task create, built once: building a statement costs more than running it.
_PROJECT_BY_NAME = select(Project).where(
    Project.org_id == bindparam("org_id"),
    Project.is_test == bindparam("is_test"),
    Project.name == bindparam("name"),
)
_PROJECT_BY_ID = select(Project).where(
    Project.org_id == bindparam("org_id"),
    Project.is_test == bindparam("is_test"),
    Project.id == bindparam("id"),
)
_BATCH_BY_NAME = select(Batch).where(
    Batch.org_id == bindparam("org_id"),
    Batch.is_test == bindparam("is_test"),
    Batch.name == bindparam("name"),
)


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """What a task create needs of its project, read as one row without the ORM."""

    id: str
    name: str
    type: str
    params: dict[str, Any]


_REF_COLUMNS = (Project.id, Project.name, Project.type, Project.param_history)
_REF_SCOPE = (Project.org_id == bindparam("org_id"), Project.is_test == bindparam("is_test"))
_PROJECT_REF_BY_NAME = select(*_REF_COLUMNS).where(*_REF_SCOPE, Project.name == bindparam("name"))
_PROJECT_REF_BY_ID = select(*_REF_COLUMNS).where(*_REF_SCOPE, Project.id == bindparam("id"))


def project_ref(
    session: Session, actor: Actor, *, name: str | None = None, project_id: str | None = None
) -> ProjectRef:
    """The project named ``name`` (or with id ``project_id``) in the caller's scope."""
    if name is not None:
        row = session.connection().execute(_PROJECT_REF_BY_NAME, _scope(actor, name=name)).first()
        if row is None:
            raise NotFound(f"No project named '{name}'.", field="project")
    else:
        row = (
            session.connection()
            .execute(_PROJECT_REF_BY_ID, _scope(actor, id=project_id or ""))
            .first()
        )
        if row is None:
            raise NotFound("Project not found.", field="project")
    return ProjectRef(id=row[0], name=row[1], type=row[2], params=current_params(row[3]))


@dataclass(frozen=True, slots=True)
class BatchRef:
    """What a task create needs of its batch, read as one row without the ORM."""

    id: str
    name: str
    status: str
    project_id: str


_BATCH_REF_BY_NAME = select(Batch.id, Batch.name, Batch.status, Batch.project_id).where(
    Batch.org_id == bindparam("org_id"),
    Batch.is_test == bindparam("is_test"),
    Batch.name == bindparam("name"),
)


def batch_ref(session: Session, actor: Actor, name: str) -> BatchRef:
    row = session.connection().execute(_BATCH_REF_BY_NAME, _scope(actor, name=name)).first()
    if row is None:
        raise NotFound(f"No batch named '{name}'.", field="batch")
    return BatchRef(id=row[0], name=row[1], status=row[2], project_id=row[3])


def reopen_batch(session: Session, batch_id: str, now: datetime) -> None:
    """A completed batch that takes a new task is in progress again (its callback fires again
    when it completes)."""
    session.connection().execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status == "completed")
        .values(status="in_progress", completed_at=None, updated_at=now)
    )


def _scope(actor: Actor, **values: str) -> dict[str, Any]:
    return {"org_id": actor.org_id, "is_test": actor.is_test, **values}


def create_project(session: Session, actor: Actor, body: dict[str, Any], now: datetime) -> Project:
    name = require_str(body, "name", max_length=300)
    type_name = require_str(body, "type")
    spec = registry.get(type_name)
    params = optional_dict(body, "params") or {}
    _check_params(type_name.lower(), params)
    if session.scalar(_projects(actor).where(Project.name == name)) is not None:
        raise Duplicate(f"A project named '{name}' already exists.", field="name")
    project = Project(
        org_id=actor.org_id,
        is_test=actor.is_test,
        name=name,
        type=type_name.lower() if type_name.lower() in spec.aliases else spec.name,
        param_history=[{**params, "version": 0, "created_at": _iso(now)}],
        rapid=optional_bool(body, "rapid") or False,
        studio=optional_bool(body, "studio") or False,
        dataset_id=optional_str(body, "datasetId"),
        created_at=now,
        updated_at=now,
    )
    _insert_unique(
        session, project, Duplicate(f"A project named '{name}' already exists.", field="name")
    )
    return project


def _insert_unique(session: Session, row: Project | Batch, duplicate: Duplicate) -> None:
    """Insert ``row``; a unique-name violation is ``duplicate``.

    The name is checked before, but two concurrent creates can both pass that check; on
    PostgreSQL the second insert then waits for the first and fails on the constraint.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise duplicate from None


def get_project(session: Session, actor: Actor, name: str) -> Project:
    project = session.scalar(_PROJECT_BY_NAME, _scope(actor, name=name))
    if project is None:
        raise NotFound(f"No project named '{name}'.", field="project")
    return project


def get_project_by_id(session: Session, actor: Actor, project_id: str) -> Project:
    project = session.scalar(_PROJECT_BY_ID, _scope(actor, id=project_id))
    if project is None:
        raise NotFound("Project not found.", field="project")
    return project


def list_projects(session: Session, actor: Actor, *, archived: bool | None = None) -> list[Project]:
    stmt = _projects(actor).order_by(Project.created_at, Project.id)
    if archived is not None:
        stmt = stmt.where(Project.archived == archived)
    return list(session.scalars(stmt))


def set_params(
    session: Session, actor: Actor, name: str, body: dict[str, Any], now: datetime
) -> Project:
    """Append a params version: the previous params updated with what the body sends."""
    project = get_project(session, actor, name)
    body = json_object(body)
    body = {k: v for k, v in body.items() if k not in ("version", "created_at")}
    previous = project.param_history[-1]["version"] if project.param_history else -1
    params = {**project.params, **body}
    _check_params(project.type, params)
    entry = {**params, "version": previous + 1, "created_at": _iso(now)}
    project.param_history = [*project.param_history, entry]
    project.updated_at = now
    session.flush()
    return project


def _check_params(type_name: str, params: dict[str, Any]) -> None:
    """A project's params are defaults for its tasks: any key may be left for the tasks to give
    (``attachment``, even ``geometries``), but every key present must be valid as a task's
    would be, so that a bad template is refused here rather than breaking every later create.
    Errors name the field under ``params`` (``params.geometries.box.min_width``)."""
    instruction = params.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise ValidationError("params.instruction must be a string.", field="params.instruction")
    spec = registry.get(type_name)
    alias = type_name if type_name in spec.aliases else None
    try:
        spec.validate_defaults({k: v for k, v in params.items() if k != "instruction"}, alias=alias)
    except ValidationError as exc:
        raise under("params", exc) from None


def task_template(project: Project) -> dict[str, Any]:
    if project.type not in TEMPLATE_TYPES:
        raise InvalidState(
            f"Task templates exist only for textcollection and chat projects; "
            f"'{project.name}' is a {project.type} project.",
            field="project",
        )
    params = project.params
    return {
        "id": f"{project.id}-template",
        "version": len(project.param_history) - 1,
        "created_at": _iso(project.created_at),
        "updated_at": _iso(project.updated_at),
        "template_variables": params.get("template_variables", {}),
        "response_schema": {"fields": params.get("fields", [])},
        "auto_onboard_enabled": False,
    }


# --- batches -------------------------------------------------------------------------------


def readable_batches(actor: Actor) -> Select[Batch]:
    """Every batch query starts here: the caller's organization and environment only."""
    return select(Batch).where(Batch.org_id == actor.org_id, Batch.is_test == actor.is_test)


def create_batch(session: Session, actor: Actor, body: dict[str, Any], now: datetime) -> Batch:
    project_name = require_str(body, "project")
    name = require_str(body, "name", max_length=300)
    callback = optional_str(body, "callback") or None
    metadata = optional_dict(body, "metadata") or {}
    calibration = optional_bool(body, "calibration_batch") or False
    self_label = optional_bool(body, "self_label_batch") or False
    staging = optional_bool(body, "staging_batch")
    project = get_project(session, actor, project_name)
    if session.scalar(readable_batches(actor).where(Batch.name == name)) is not None:
        raise Duplicate(f"A batch named '{name}' already exists.", field="name")
    if callback:
        from steelyard.callbacks.urls import check_callback_form

        # Its form only: the edge judged its address before this transaction, by the app's
        # policy (``callbacks.targets.prepare``); nothing here may wait on DNS under the lock.
        check_callback_form(callback, field="callback")
    # Studio/Rapid projects and calibration/self-label batches wait in staging for finalize;
    # ordinary batches start at once, as in Scale.
    starts_staged = (
        staging
        if staging is not None
        else (project.rapid or project.studio or calibration or self_label)
    )
    batch = Batch(
        org_id=actor.org_id,
        is_test=actor.is_test,
        project_id=project.id,
        name=name,
        status="staging" if starts_staged else "in_progress",
        callback=callback,
        calibration_batch=calibration,
        self_label_batch=self_label,
        metadata_=metadata,
        created_at=now,
        updated_at=now,
    )
    _insert_unique(
        session, batch, Duplicate(f"A batch named '{name}' already exists.", field="name")
    )
    return batch


def get_batch(session: Session, actor: Actor, name: str, *, for_update: bool = False) -> Batch:
    stmt = _BATCH_BY_NAME.with_for_update() if for_update else _BATCH_BY_NAME
    batch = session.scalar(stmt, _scope(actor, name=name))
    if batch is None:
        raise NotFound(f"No batch named '{name}'.", field="batch")
    return batch


@dataclass(frozen=True)
class BatchPage:
    docs: list[tuple[Batch, str]]
    total: int
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.docs) < self.total


def list_batches(
    session: Session,
    actor: Actor,
    *,
    project: str | None,
    status: str | None,
    start_time: datetime | None,
    end_time: datetime | None,
    exclude_archived: bool | None,
    limit: int,
    offset: int,
) -> BatchPage:
    stmt = readable_batches(actor)
    if project is not None:
        stmt = stmt.where(Batch.project_id == get_project(session, actor, project).id)
    if status is not None:
        stmt = stmt.where(Batch.status == batch_status_filter(status))
    if start_time is not None:
        stmt = stmt.where(Batch.created_at >= start_time)
    if end_time is not None:
        stmt = stmt.where(Batch.created_at <= end_time)
    if exclude_archived:
        stmt = stmt.where(Batch.archived.is_(False))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Batch.created_at, Batch.id).limit(limit).offset(offset))
    batches = list(rows)
    names = _project_names(session, {b.project_id for b in batches})
    return BatchPage(
        docs=[(b, names[b.project_id]) for b in batches], total=total, limit=limit, offset=offset
    )


def batch_status_filter(value: str) -> str:
    """A batch status to filter on, in either API's spelling; the stored status."""
    try:
        return _BATCH_STATUS_SPELLINGS[value]
    except KeyError:
        raise ValidationError(
            f"status must be one of {', '.join(BATCH_STATUSES)} (or cancelled).", field="status"
        ) from None


def project_name(session: Session, project_id: str) -> str:
    return _project_names(session, {project_id})[project_id]


def _project_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Project.id, Project.name).where(Project.id.in_(ids)))
    return {r[0]: r[1] for r in rows}


def finalize_batch(session: Session, actor: Actor, name: str, now: datetime) -> Batch:
    """staging → in_progress; idempotent otherwise.

    Finalizing an in-progress batch is a no-op, as Scale's own tests expect. So is finalizing a
    completed one: with a test key every task completes as it is created, so the batch is
    already complete by the time the customer's script finalizes it (§11 scenario 2), and
    "no more tasks are coming" is true of a finished batch anyway.
    """
    batch = get_batch(session, actor, name, for_update=True)
    if batch.status == "staging":
        batch.status = "in_progress"
        batch.updated_at = now
        session.flush()
    from steelyard.tasks.service import maybe_complete_batch

    maybe_complete_batch(session, batch, now)
    return batch


def batch_counts(session: Session, batch: Batch) -> dict[str, int]:
    rows = session.execute(
        select(TaskCount.status, func.sum(TaskCount.n))
        .where(
            TaskCount.org_id == batch.org_id,
            TaskCount.is_test == batch.is_test,
            TaskCount.project_id == batch.project_id,
            TaskCount.batch_id == batch.id,
        )
        .group_by(TaskCount.status)
    )
    counts = {"pending": 0, "completed": 0, "error": 0, "canceled": 0}
    for status, n in rows:
        counts[status] = int(n or 0)
    return counts


def set_batch_metadata(
    session: Session, actor: Actor, name: str, metadata: Any, now: datetime
) -> Batch:
    if metadata is None:
        metadata = {}  # the client sends ``body or None``: ``{}`` arrives as an empty body
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be a JSON object.", field="metadata")
    batch = get_batch(session, actor, name)
    batch.metadata_ = metadata
    batch.updated_at = now
    session.flush()
    return batch


def _iso(value: datetime) -> str:
    from steelyard.timefmt import iso

    return iso(value)
