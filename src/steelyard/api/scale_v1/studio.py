"""Scale v1 Studio: labeler assignments, project groups and pending-batch priorities."""

from __future__ import annotations

from typing import Any

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, DbDep, path_name
from steelyard.studio import service
from steelyard.studio.service import GroupView, StudioBatchView

router = credential_router(Credential.API_KEY, tags=["studio"])


def _group(group: GroupView) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "numWorkers": len(group.workers),
        "isSingleton": group.is_singleton,
        "workers": [{"id": w.id, "email": w.email} for w in group.workers],
    }


def _batch(batch: StudioBatchView) -> dict[str, Any]:
    return {
        "id": batch.id,
        "name": batch.name,
        "projectId": batch.project_id,
        "projectName": batch.project_name,
        "batchType": service.BATCH_TYPE,
        "studioPriority": batch.priority,
        "total": batch.total,
        "completed": batch.completed,
        "groups": batch.groups,
    }


@router.get("/studio/assignments", summary="List Studio assignments")
def list_assignments(actor: ActorDep, db: DbDep) -> dict[str, list[str]]:
    with db.unit_of_work(write=False) as session:
        return service.list_assignments(session, actor)


@router.post("/studio/assignments/add", summary="Assign teammates to projects")
def add_assignments(actor: ActorDep, body: BodyDep, db: DbDep) -> dict[str, list[str]]:
    with db.unit_of_work() as session:
        return service.add_assignments(session, actor, body)


@router.post("/studio/assignments/remove", summary="Unassign teammates from projects")
def remove_assignments(actor: ActorDep, body: BodyDep, db: DbDep) -> dict[str, list[str]]:
    with db.unit_of_work() as session:
        return service.remove_assignments(session, actor, body)


@router.get("/studio/projects/{project}/groups", summary="List a project's labeler groups")
def list_groups(project: str, actor: ActorDep, db: DbDep) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return [_group(g) for g in service.list_groups(session, actor, path_name(project))]


@router.post("/studio/projects/{project}/groups", summary="Create a labeler group")
def create_group(project: str, actor: ActorDep, body: BodyDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _group(service.create_group(session, actor, path_name(project), body))


@router.put("/studio/projects/{project}/groups/{group}", summary="Change a group's members")
def update_group(
    project: str, group: str, actor: ActorDep, body: BodyDep, db: DbDep
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _group(
            service.update_group(session, actor, path_name(project), path_name(group), body)
        )


@router.get("/studio/batches", summary="List pending batches in priority order")
def list_batches(actor: ActorDep, db: DbDep) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return [_batch(b) for b in service.list_batches(session, actor)]


@router.post("/studio/batches/set_priorities", summary="Order pending batches")
def set_priorities(actor: ActorDep, body: BodyDep, db: DbDep) -> list[dict[str, Any]]:
    with db.unit_of_work() as session:
        return [_batch(b) for b in service.set_priorities(session, actor, body)]


@router.post("/studio/batches/reset_priorities", summary="Back to creation order")
def reset_priorities(actor: ActorDep, db: DbDep) -> list[dict[str, Any]]:
    with db.unit_of_work() as session:
        return [_batch(b) for b in service.reset_priorities(session, actor)]


@router.put("/studio/batches/{batch}", summary="Assign a batch to labeler groups")
def assign_groups(batch: str, actor: ActorDep, body: BodyDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _batch(service.assign_groups(session, actor, path_name(batch), body))
