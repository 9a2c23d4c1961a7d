"""Projects (versioned params) and batches (staging → in_progress → completed).

A batch's changes that depend on its tasks (finalize, resume, cancel, completion) are in
``workflow.batches``: this package knows nothing of tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import Duplicate, InvalidState, NotFound, ValidationError
from steelyard.projects import workflow_settings
from steelyard.projects.models import Batch, Project
from steelyard.projects.params import (
    NewProject,
    ParamsChanged,
    ParamsUpdate,
    ProjectDefaults,
    defaults_of,
    read_new_project,
    version_column,
)
from steelyard.validation import (
    optional_bool,
    optional_dict,
    optional_str,
    require_str,
)

#: Stored batch statuses. v1 reports them as stored (``canceled``, as every v1 status is
#: spelled); v2 spells that one ``cancelled`` (``tasks.v2wire``).
BATCH_STATUSES = ("staging", "in_progress", "completed", "paused", "canceled")
#: Either API's spelling of a batch status → the stored one: both APIs filter with both.
_BATCH_STATUS_SPELLINGS = {**{s: s for s in BATCH_STATUSES}, "cancelled": "canceled"}
TEMPLATE_TYPES = ("textcollection", "chat", "chatexperimental", "chatlite", "multichat")


# --- projects ------------------------------------------------------------------------------


def _owned(actor: Actor) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return Project.org_id == actor.org_id, Project.is_test == actor.is_test


def _projects(actor: Actor) -> Select[Project]:
    return select(Project).where(*_owned(actor))


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
    """What a task create needs of its project inside its write: one row without the ORM, and
    the params' version rather than the params (``projects.params``)."""

    id: str
    name: str
    type: str
    version: int


_REF_SCOPE = (Project.org_id == bindparam("org_id"), Project.is_test == bindparam("is_test"))


def _ref_statements(dialect: str) -> tuple[Select[str, str, str, int], Select[str, str, str, int]]:
    columns = (Project.id, Project.name, Project.type, version_column(dialect))
    return (
        select(*columns).where(*_REF_SCOPE, Project.name == bindparam("name")),
        select(*columns).where(*_REF_SCOPE, Project.id == bindparam("id")),
    )


# Built once per dialect: building a statement costs more than running it.
_REF_STATEMENTS = {dialect: _ref_statements(dialect) for dialect in ("sqlite", "postgresql")}
_DEFAULTS_COLUMNS = (Project.id, Project.name, Project.type, Project.param_history)
_DEFAULTS_BY_NAME = select(*_DEFAULTS_COLUMNS).where(*_REF_SCOPE, Project.name == bindparam("name"))
_DEFAULTS_BY_ID = select(*_DEFAULTS_COLUMNS).where(*_REF_SCOPE, Project.id == bindparam("id"))


def _project_row(
    session: Session, actor: Actor, by_name: Any, by_id: Any, name: str | None, project_id: Any
) -> Any:
    if name is not None:
        row = session.connection().execute(by_name, _scope(actor, name=name)).first()
        if row is None:
            raise NotFound(f"No project named '{name}'.", field="project")
        return row
    row = session.connection().execute(by_id, _scope(actor, id=project_id or "")).first()
    if row is None:
        raise NotFound("Project not found.", field="project")
    return row


def project_ref(
    session: Session, actor: Actor, *, name: str | None = None, project_id: str | None = None
) -> ProjectRef:
    """The project named ``name`` (or with id ``project_id``) in the caller's scope."""
    by_name, by_id = _REF_STATEMENTS[session.get_bind().dialect.name]
    row = _project_row(session, actor, by_name, by_id, name, project_id)
    return ProjectRef(id=row[0], name=row[1], type=row[2], version=int(row[3] or 0))


def project_defaults(
    session: Session, actor: Actor, *, name: str | None = None, project_id: str | None = None
) -> ProjectDefaults:
    """The project's current params and their version, to check a request against before its
    write transaction (which then compares versions only)."""
    return defaults_of(
        _project_row(session, actor, _DEFAULTS_BY_NAME, _DEFAULTS_BY_ID, name, project_id)
    )


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


def create_project(
    session: Session, actor: Actor, new: NewProject | dict[str, Any], now: datetime
) -> Project:
    """Store a project. The API reads and checks its body first (``params.read_new_project``),
    outside the transaction; a dict (the CLI's small bodies) is read here."""
    if not isinstance(new, NewProject):
        new = read_new_project(new)
    name = new.name
    if session.scalar(select(Project.id).where(*_owned(actor), Project.name == name)):
        raise Duplicate(f"A project named '{name}' already exists.", field="name")
    project = Project(
        org_id=actor.org_id,
        is_test=actor.is_test,
        name=name,
        type=new.type,
        param_history=[{**new.params, "version": 0, "created_at": _iso(now)}],
        quality_settings=workflow_settings.quality_doc([new.params]),
        rapid=new.rapid,
        studio=new.studio,
        dataset_id=new.dataset_id,
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


_UNCHANGED_COLUMNS = (
    Project.id,
    Project.org_id,
    Project.is_test,
    Project.name,
    Project.type,
    Project.rapid,
    Project.studio,
    Project.archived,
    Project.dataset_id,
    Project.settings,
    Project.template_version,
    Project.created_at,
)


def set_params(session: Session, actor: Actor, change: ParamsUpdate, now: datetime) -> Project:
    """Store the history ``change`` holds, checked beforehand against version ``change.base``
    (``params.read_params_update``), if the project is still at that version; else
    ``ParamsChanged``, with nothing written. The stored history is neither read nor decoded
    here: the version is compared in SQL. Returns the project as stored (not in the session)."""
    dialect = session.get_bind().dialect.name
    row = session.execute(
        update(Project)
        .where(
            *_owned(actor),
            Project.id == change.project_id,
            version_column(dialect) == change.base,
        )
        .values(
            param_history=change.history,
            quality_settings=workflow_settings.quality_doc(change.history),
            updated_at=now,
        )
        .returning(*_UNCHANGED_COLUMNS)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        still = select(Project.id).where(*_owned(actor), Project.id == change.project_id)
        if session.scalar(still):
            raise ParamsChanged()
        raise NotFound("Project not found.", field="project")
    values = dict(zip((c.key for c in _UNCHANGED_COLUMNS), row, strict=True))
    return Project(
        **values,
        param_history=change.history,
        quality_settings=workflow_settings.quality_doc(change.history),
        updated_at=now,
    )


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
