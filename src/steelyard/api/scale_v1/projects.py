"""Scale v1 projects."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep, path_name
from steelyard.api.scale_v1 import bodies, wire
from steelyard.projects import params, service
from steelyard.workflow import worker_quality

router = credential_router(Credential.API_KEY, tags=["projects"])


@router.post(
    "/projects",
    summary="Create a project",
    openapi_extra=bodies.body(bodies.CreateProjectBody),
)
def create_project(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    new = params.read_new_project(body)  # the params are checked here, before the write
    with db.unit_of_work() as session:
        return wire.project(service.create_project(session, actor, new, clock.now()))


@router.get("/projects", summary="List projects (a bare array)")
def list_projects(
    actor: ActorDep, db: DbDep, archived: bool | None = Query(None)
) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return [wire.project(p) for p in service.list_projects(session, actor, archived=archived)]


@router.get("/projects/{name}", summary="Get a project by name")
def get_project(name: str, actor: ActorDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        return wire.project(service.get_project(session, actor, path_name(name)))


@router.post("/projects/{name}/setParams", summary="Add a new version of the project's params")
def set_params(
    name: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    now = clock.now()

    def attempt() -> dict[str, Any]:
        # Read, check with no transaction open, then write if the params' version is still the
        # one checked (``projects.params``).
        with db.unit_of_work(write=False) as session:
            project = service.get_project(session, actor, path_name(name))
        change = params.read_params_update(project, body, now)
        with db.unit_of_work() as session:
            return wire.project(service.set_params(session, actor, change, now))

    updated = params.retried(attempt)
    if isinstance(body, dict) and "worker_quality" in body and not actor.is_test:
        # A new threshold applies to the gold already answered, not only to the next answer.
        worker_quality.recheck_project(db, actor.org_id, str(updated["id"]), now)
    return updated


@router.get("/projects/{name}/taskTemplates", summary="The task template of a project")
def task_template(name: str, actor: ActorDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        return service.task_template(service.get_project(session, actor, path_name(name)))
