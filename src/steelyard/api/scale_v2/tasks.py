"""v2 tasks: get one, keyset-paged list, metadata (replace or deep merge)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Query
from sqlalchemy.orm import Session

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep
from steelyard.api.scale_v2.common import (
    after,
    batches_by_id,
    before,
    body_object,
    merge_flag,
    projects_by_id,
)
from steelyard.projects import batch_control
from steelyard.tasks import metadata, repository, service, v2wire
from steelyard.tasks.models import Task, TaskRow
from steelyard.validation import require_str

router = credential_router(Credential.API_KEY)


def _render(
    session: Session, tasks: Sequence[Task | TaskRow], expand: set[str]
) -> list[dict[str, Any]]:
    project_objs = (
        projects_by_id(session, {t.project_id for t in tasks if t.project_id})
        if "project" in expand
        else {}
    )
    batch_objs = (
        batches_by_id(session, {t.batch_id for t in tasks if t.batch_id})
        if "batch" in expand
        else {}
    )
    return [
        v2wire.task(
            t,
            project_obj=project_objs.get(t.project_id or ""),
            batch_obj=batch_objs.get(t.batch_id or ""),
        )
        for t in tasks
    ]


@router.get("/task", summary="Get a task")
def get_task(
    actor: ActorDep,
    db: DbDep,
    task_id: str = Query(...),
    expand: list[str] = Query([]),
    opts: list[str] = Query([]),
) -> dict[str, Any]:
    wanted = v2wire.check_choices(expand, v2wire.TASK_EXPANDS, "expand")
    v2wire.check_choices(opts, v2wire.OPTS, "opts")
    with db.unit_of_work(write=False) as session:
        return _render(session, [service.get_task(session, actor, task_id)], wanted)[0]


@router.get("/tasks", summary="List tasks (keyset pages)")
def get_tasks(
    actor: ActorDep,
    db: DbDep,
    project_id: str | None = Query(None),
    project_name: str | None = Query(None),
    batch_id: str | None = Query(None),
    batch_name: str | None = Query(None),
    status: str | None = Query(None),
    completed_after: str | None = Query(None),
    completed_before: str | None = Query(None),
    limit: int = Query(100, ge=1, le=100),
    next_token: str | None = Query(None),
    expand: list[str] = Query([]),
    opts: list[str] = Query([]),
) -> dict[str, Any]:
    wanted = v2wire.check_choices(expand, v2wire.TASK_EXPANDS, "expand")
    v2wire.check_choices(opts, v2wire.OPTS, "opts")
    if status == "deleted":  # a valid v2 status that no Steelyard task ever has
        return {"tasks": [], "next_token": None}
    with db.unit_of_work(write=False) as session:
        project = batch_control.resolve_project(session, actor, project_id, project_name)
        batch = batch_control.resolve_batch(session, actor, batch_id, batch_name)
        filters = repository.TaskFilters(
            project_id=project.id if project else None,
            batch_id=batch.id if batch else None,
            status=status,
            completed_after=after(completed_after, "completed_after"),
            completed_before=before(completed_before, "completed_before"),
        )
        filters.validate()
        page = repository.page(session, actor, filters, limit=limit, token=next_token)
        return {"tasks": _render(session, page.tasks, wanted), "next_token": page.next_token}


@router.post("/task/metadata", summary="Set a task's metadata (merge=true deep-merges)")
def set_task_metadata(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    doc = body_object(body)
    task_id = require_str(doc, "task_id", max_length=100)
    with db.unit_of_work() as session:
        task = metadata.update_task_metadata(
            session, actor, task_id, doc.get("metadata"), merge=merge_flag(doc), now=clock.now()
        )
        return _render(session, [task], set())[0]
