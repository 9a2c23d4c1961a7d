"""Scale v1 tasks: create by type, read, list (keyset pages), and per-task changes."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from fastapi import Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from steelyard.accounts.schemas import Actor
from steelyard.api import transactions
from steelyard.api.auth import Credential, actor_of, credential_router
from steelyard.api.deps import (
    ActorDep,
    BodyDep,
    ClockDep,
    DbDep,
    SettingsDep,
    json_body,
)
from steelyard.api.responses import JSONDoc
from steelyard.api.scale_v1 import bodies
from steelyard.callbacks import targets
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import ValidationError
from steelyard.projects import params
from steelyard.projects import service as projects
from steelyard.projects.params import ProjectDefaults
from steelyard.tasks import create, gold, repository, service
from steelyard.tasks.models import Task, TaskRow
from steelyard.tasks.serialize import task_to_scale
from steelyard.timefmt import parse, parse_upper
from steelyard.workflow import batches, rework

router = credential_router(Credential.API_KEY, tags=["tasks"])


def _one(session: Session, task: Task) -> dict[str, Any]:
    project_names, batch_names = repository.names_for(session, [task])
    return task_to_scale(
        task,
        project_name=project_names.get(task.project_id or ""),
        batch_name=batch_names.get(task.batch_id or ""),
    )


# The hottest call takes no dependencies: it reads the caller that the route's credential
# resolved, and the body, itself. FastAPI's dependency solving was ~7% of a create's CPU.
@router.post(
    "/task/{task_type}",
    summary="Create a task of a type",
    openapi_extra=bodies.body(bodies.CreateTaskBody),
)
async def create_task(task_type: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    body = await json_body(request)
    db: Database = request.app.state.db
    clock: Clock = request.app.state.clock
    new = create.read_new_task(task_type, body)
    # Its DNS lookup happens here, bounded, never under the database's write lock.
    await targets.prepare(
        new.callback_url, field="callback_url", settings=request.app.state.settings
    )
    size, now = len(await request.body()), clock.now()
    created = await params.retried_async(lambda: _create(db, actor, new, size, now))
    return JSONDoc(
        task_to_scale(
            created.task, project_name=created.project_name, batch_name=created.batch_name
        )
    )


async def _create(
    db: Database, actor: Actor, new: create.NewTask, size: int, now: datetime
) -> create.NamedTask:
    """Check the task's params outside any transaction (in a thread when large), against its
    project's params as cached or read; then the short write (``tasks.create``)."""
    key = (actor.org_id, actor.is_test, *new.scope)
    defaults = None
    if new.scope != (None, None):
        defaults = params.DEFAULTS.get(key)
        if defaults is None:
            defaults = await run_in_threadpool(_task_defaults, db, actor, new)
            if defaults is not None:
                params.DEFAULTS.put(key, defaults)
    check = functools.partial(create.check_new_task, new, defaults, is_test=actor.is_test)
    if size + (defaults.weight if defaults else 0) <= params.INLINE_BYTES:
        checked = check()
    else:
        checked = await run_in_threadpool(check)
    try:
        return await transactions.write(db, batches.insert_task, actor, new, checked, now)
    except params.ParamsChanged:
        params.DEFAULTS.forget(key)
        raise


def _task_defaults(db: Database, actor: Actor, new: create.NewTask) -> ProjectDefaults | None:
    with db.unit_of_work(write=False) as session:
        return create.task_defaults(session, actor, new)


@router.post("/evaluation_tasks/{task_type}", summary="Create an evaluation (gold) task")
def create_evaluation_task(
    task_type: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    return _quality(task_type, "evaluation", actor, body, db, clock.now())


@router.post("/training_tasks/{task_type}", summary="Create a training task")
def create_training_task(
    task_type: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    return _quality(task_type, "training", actor, body, db, clock.now())


def _quality(
    task_type: str, kind: str, actor: Actor, body: Any, db: Database, now: datetime
) -> dict[str, Any]:
    new = gold.read_quality_task(kind, task_type, body)

    def attempt() -> dict[str, Any]:
        # Read the project's params, check with no transaction open, then the short write.
        with db.unit_of_work(write=False) as session:
            defaults = projects.project_defaults(session, actor, name=new.project_name)
        checked = gold.check_quality_task(new, defaults)
        with db.unit_of_work() as session:
            task = gold.insert_quality_task(session, actor, new, checked, now)
        return gold.quality_task_to_scale(task, defaults.name)

    return params.retried(attempt)


@router.get("/task/{task_id}", summary="Get a task")
def get_task(task_id: str, actor: ActorDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        return _one(session, service.get_task(session, actor, task_id))


@router.post("/task/{task_id}/cancel", summary="Cancel a pending task")
def cancel_task(
    task_id: str,
    actor: ActorDep,
    db: DbDep,
    clock: ClockDep,
    clear_unique_id: bool = Query(False),
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        task = batches.cancel_task(
            session, actor, task_id, clear_unique_id=clear_unique_id, now=clock.now()
        )
        return _one(session, task)


@router.post(
    "/task/{task_id}/audit",
    summary="Accept or reject a completed task",
    openapi_extra=bodies.body(bodies.AuditBody),
)
def audit_task(
    task_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    audit = service.read_audit(body)
    if audit.response is not None:
        # A corrected response is checked with no transaction open (params never change).
        with db.unit_of_work(write=False) as session:
            task = service.get_task(session, actor, task_id)
        audit = service.check_audit_fix(task, audit)
    with db.unit_of_work() as session:
        # A rejection of a live task sends it back for rework (``workflow.rework``).
        return _one(session, rework.audit_task(session, actor, task_id, audit, clock.now()))


@router.post(
    "/task/{task_id}/unique_id",
    summary="Set a task's unique_id",
    openapi_extra=bodies.body(bodies.UniqueIdBody),
)
def set_unique_id(
    task_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _one(session, service.set_unique_id(session, actor, task_id, body, clock.now()))


@router.delete("/task/{task_id}/unique_id", summary="Clear a task's unique_id")
def clear_unique_id(task_id: str, actor: ActorDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _one(session, service.clear_unique_id(session, actor, task_id, clock.now()))


@router.post(
    "/task/{task_id}/setMetadata",
    summary="Replace a task's metadata",
    openapi_extra=bodies.body(bodies.METADATA, "The new metadata object itself."),
)
def set_metadata(
    task_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _one(session, service.set_metadata(session, actor, task_id, body, clock.now()))


def _tags(task_id: str, actor: Actor, body: Any, db: Any, clock: Any, mode: str) -> dict[str, Any]:
    with db.unit_of_work() as session:
        task = service.change_tags(session, actor, task_id, body, mode=mode, now=clock.now())
        return _one(session, task)


@router.post(
    "/task/{task_id}/tags",
    summary="Replace a task's tags (body: array)",
    openapi_extra=bodies.body(bodies.TAGS, "A bare JSON array of tags."),
)
def set_tags(
    task_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    return _tags(task_id, actor, body, db, clock, "set")


@router.put(
    "/task/{task_id}/tags",
    summary="Add tags to a task (body: array)",
    openapi_extra=bodies.body(bodies.TAGS, "A bare JSON array of tags."),
)
def add_tags(
    task_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    return _tags(task_id, actor, body, db, clock, "add")


@router.delete(
    "/task/{task_id}/tags",
    summary="Remove tags from a task (body: array)",
    openapi_extra=bodies.body(bodies.TAGS, "A bare JSON array of tags."),
)
def delete_tags(
    task_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    return _tags(task_id, actor, body, db, clock, "delete")


def _unique_ids(request: Request, decoded: list[str]) -> list[str]:
    """The ``unique_id`` values, also read with ``+`` kept literal.

    The client's recovery GET after a 5xx → 409 (``tasks?unique_id=<value>``) does not
    URL-encode the value, so a ``+`` in it would be read as a space. Reading the raw query
    string with ``unquote`` (no plus-decoding) as well finds both spellings.
    """
    raw = request.scope.get("query_string", b"").decode("latin-1")
    literal = [
        unquote(value, errors="replace")
        for key, _, value in (part.partition("=") for part in raw.split("&"))
        if unquote(key) == "unique_id" and "+" in value
    ]
    return list(dict.fromkeys([*decoded, *literal]))


def _split(values: list[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part]


def _time(value: str | None, key: str) -> Any:
    if not value:
        return None
    upper = key == "end_time" or key.endswith("_before")
    return parse_upper(value, field=key) if upper else parse(value, field=key)


@router.get("/tasks", summary="List tasks (cursor pages with next_token)")
def list_tasks(
    request: Request,
    actor: ActorDep,
    db: DbDep,
    settings: SettingsDep,
    project: str | None = Query(None),
    batch: str | None = Query(None),
    status: str | None = Query(None),
    type: str | None = Query(None),
    limit: int = Query(100, ge=1, le=100),
    next_token: str | None = Query(None),
    customer_review_status: list[str] = Query(default_factory=list),
    tags: list[str] = Query(default_factory=list),
    unique_id: list[str] = Query(default_factory=list),
    start_time: str | None = Query(None, description="created at or after"),
    end_time: str | None = Query(None, description="created at or before"),
    updated_after: str | None = Query(None),
    updated_before: str | None = Query(None),
    completed_after: str | None = Query(None),
    completed_before: str | None = Query(None),
    include_attachment_url: bool = Query(False),
    limited_response: bool = Query(False),
) -> JSONDoc:
    unique_ids = _unique_ids(request, unique_id)
    with db.unit_of_work(write=False) as session:
        filters = repository.TaskFilters(
            status=status.lower() if status else None,
            type=type.lower() if type else None,
            review_statuses=_split(customer_review_status),
            tags=list(tags),
            unique_ids=unique_ids,
            created_after=_time(start_time, "start_time"),
            created_before=_time(end_time, "end_time"),
            updated_after=_time(updated_after, "updated_after"),
            updated_before=_time(updated_before, "updated_before"),
            completed_after=_time(completed_after, "completed_after"),
            completed_before=_time(completed_before, "completed_before"),
        )
        filters.validate()
        if project:
            filters.project_id = projects.project_ref(session, actor, name=project).id
        if batch:
            b = projects.get_batch(session, actor, batch)
            if filters.project_id is not None and b.project_id != filters.project_id:
                raise ValidationError("That batch is not in that project.", field="batch")
            filters.batch_id = b.id
        total = repository.count(session, actor, filters, token=next_token)
        page = repository.page(session, actor, filters, limit=limit, token=next_token, total=total)
        project_names, batch_names = repository.names_for(session, page.tasks)
        base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        docs = [
            task_to_scale(
                t,
                project_name=project_names.get(t.project_id or ""),
                batch_name=batch_names.get(t.batch_id or ""),
                limited=limited_response,
                attachment_url=(
                    _attachment_url(session, actor, settings, t, base)
                    if include_attachment_url and not limited_response
                    else None
                ),
            )
            for t in page.tasks
        ]
    # orjson straight from the documents: FastAPI's jsonable_encoder walk over a page of 100
    # tasks cost more than reading them.
    return JSONDoc(
        {
            "docs": docs,
            "total": total,
            "limit": limit,
            "offset": 0,
            "has_more": page.next_token is not None,
            "next_token": page.next_token,
        }
    )


def _attachment_url(
    session: Session, actor: Actor, settings: Settings, task: Task | TaskRow, base: str
) -> str | None:
    attachment = (task.params or {}).get("attachment")
    if not isinstance(attachment, str):
        return None
    from steelyard.files import service as files

    stored = files.resolve_attachment(session, actor.org_id, attachment, is_test=actor.is_test)
    if stored is None:
        return attachment
    # A fresh link (the one in the params may have expired), as long-lived as upload links.
    return files.attachment_url(
        stored, base, settings.secret_key, ttl_seconds=settings.file_url_ttl_seconds
    )
