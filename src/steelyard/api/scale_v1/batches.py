"""Scale v1 batches (offset pagination with ``totalDocs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Query
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.api import transactions
from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep, SettingsDep, path_name
from steelyard.api.scale_v1 import bodies, wire
from steelyard.callbacks import targets
from steelyard.projects import service
from steelyard.tasks.repository import batch_counts
from steelyard.timefmt import parse, parse_upper
from steelyard.validation import json_object
from steelyard.workflow import batches

router = credential_router(Credential.API_KEY, tags=["batches"])


@router.post(
    "/batches",
    summary="Create a batch",
    openapi_extra=bodies.body(bodies.CreateBatchBody),
)
async def create_batch(
    actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep, settings: SettingsDep
) -> dict[str, Any]:
    body = json_object(body)
    await targets.prepare(body.get("callback"), field="callback", settings=settings)
    return await transactions.write(db, _create_batch, actor, body, clock.now())


def _create_batch(
    session: Session, actor: Actor, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    batch = service.create_batch(session, actor, body, now)
    return wire.batch(batch, service.project_name(session, batch.project_id))


@router.get("/batches", summary="List batches")
def list_batches(
    actor: ActorDep,
    db: DbDep,
    project: str | None = Query(None),
    status: str | None = Query(None),
    start_time: str | None = Query(None),
    end_time: str | None = Query(None),
    exclude_archived: bool | None = Query(None),
    limit: int = Query(100, ge=1, le=100),
    offset: int = Query(0, ge=0, le=2**31 - 1),
) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        page = service.list_batches(
            session,
            actor,
            project=project,
            status=status,
            start_time=parse(start_time, field="start_time") if start_time else None,
            end_time=parse_upper(end_time, field="end_time") if end_time else None,
            exclude_archived=exclude_archived,
            limit=limit,
            offset=offset,
        )
        return {
            "docs": [wire.batch(b, name) for b, name in page.docs],
            "totalDocs": page.total,
            "limit": page.limit,
            "offset": page.offset,
            "has_more": page.has_more,
        }


@router.get("/batches/{name}", summary="Get a batch")
def get_batch(name: str, actor: ActorDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        batch = service.get_batch(session, actor, path_name(name))
        return wire.batch(batch, service.project_name(session, batch.project_id))


@router.post("/batches/{name}/finalize", summary="Finalize a staging batch (idempotent)")
def finalize(name: str, actor: ActorDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    with db.unit_of_work() as session:
        batch = batches.finalize_batch(session, actor, path_name(name), clock.now())
        return wire.batch(batch, service.project_name(session, batch.project_id))


@router.get("/batches/{name}/status", summary="Task counts of a batch by status")
def batch_status(name: str, actor: ActorDep, db: DbDep) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        batch = service.get_batch(session, actor, path_name(name))
        return {"status": batch.status, **batch_counts(session, batch)}


@router.post("/batches/{name}/setMetadata", summary="Replace a batch's metadata")
def set_metadata(
    name: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        batch = service.set_batch_metadata(session, actor, path_name(name), body, clock.now())
        return wire.batch(batch, service.project_name(session, batch.project_id))
