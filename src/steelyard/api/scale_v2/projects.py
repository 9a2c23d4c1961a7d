"""v2 projects: get one by id or name, list all."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, DbDep
from steelyard.api.scale_v2.common import after, before
from steelyard.projects import batch_control, service
from steelyard.tasks import v2wire

router = credential_router(Credential.API_KEY)


@router.get("/project", summary="Get a project")
def get_project(
    actor: ActorDep,
    db: DbDep,
    project_id: str | None = Query(None),
    project_name: str | None = Query(None),
) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        return v2wire.project(
            batch_control.require_project(session, actor, project_id, project_name)
        )


@router.get("/projects", summary="List projects")
def get_projects(
    actor: ActorDep,
    db: DbDep,
    created_after: str | None = Query(None),
    created_before: str | None = Query(None),
) -> dict[str, Any]:
    lower = after(created_after, "created_after")
    upper = before(created_before, "created_before")
    with db.unit_of_work(write=False) as session:
        found = service.list_projects(session, actor)
        return {
            "projects": [
                v2wire.project(p)
                for p in found
                if (lower is None or p.created_at >= lower)
                and (upper is None or p.created_at <= upper)
            ]
        }
