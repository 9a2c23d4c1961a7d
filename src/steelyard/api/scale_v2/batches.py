"""v2 batches: get, list (offset-encoded next_token), create, finalize, pause, resume, cancel,
metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Query
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.api import transactions
from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep, SettingsDep
from steelyard.api.scale_v2.common import (
    after,
    before,
    body_object,
    merge_flag,
    opt_str,
    projects_by_id,
)
from steelyard.callbacks import targets
from steelyard.errors import ValidationError
from steelyard.projects import batch_control, service
from steelyard.projects.models import Batch
from steelyard.tasks import v2wire
from steelyard.validation import optional_bool
from steelyard.workflow import batches

router = credential_router(Credential.API_KEY)


def _render(session: Session, batches: list[Batch], expand: set[str]) -> list[dict[str, Any]]:
    objs = projects_by_id(session, {b.project_id for b in batches}) if "project" in expand else {}
    return [v2wire.batch(b, project_obj=objs.get(b.project_id)) for b in batches]


def _one(session: Session, batch: Batch) -> dict[str, Any]:
    return _render(session, [batch], set())[0]


def _target(body: Any) -> tuple[str | None, str | None]:
    doc = body_object(body)
    return opt_str(doc, "batch_id"), opt_str(doc, "batch_name")


@router.get("/batch", summary="Get a batch")
def get_batch(
    actor: ActorDep,
    db: DbDep,
    batch_id: str | None = Query(None),
    batch_name: str | None = Query(None),
    expand: list[str] = Query([]),
) -> dict[str, Any]:
    wanted = v2wire.check_choices(expand, v2wire.BATCH_EXPANDS, "expand")
    with db.unit_of_work(write=False) as session:
        batch = batch_control.require_batch(session, actor, batch_id, batch_name)
        return _render(session, [batch], wanted)[0]


@router.get("/batches", summary="List batches")
def get_batches(
    actor: ActorDep,
    db: DbDep,
    project_id: str | None = Query(None),
    project_name: str | None = Query(None),
    status: str | None = Query(None),
    created_after: str | None = Query(None),
    created_before: str | None = Query(None),
    completed_after: str | None = Query(None),
    completed_before: str | None = Query(None),
    limit: int = Query(100, ge=1, le=100),
    next_token: str | None = Query(None),
    expand: list[str] = Query([]),
) -> dict[str, Any]:
    wanted = v2wire.check_choices(expand, v2wire.BATCH_EXPANDS, "expand")
    with db.unit_of_work(write=False) as session:
        project = batch_control.resolve_project(session, actor, project_id, project_name)
        filters = batch_control.BatchFilters(
            project_id=project.id if project else None,
            status=service.batch_status_filter(status) if status else None,
            created_after=after(created_after, "created_after"),
            created_before=before(created_before, "created_before"),
            completed_after=after(completed_after, "completed_after"),
            completed_before=before(completed_before, "completed_before"),
        )
        page = batch_control.page(session, actor, filters, limit=limit, token=next_token)
        return {"batches": _render(session, page.batches, wanted), "next_token": page.next_token}


@router.post("/batch", summary="Create a batch")
async def create_batch(
    actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep, settings: SettingsDep
) -> dict[str, Any]:
    doc = body_object(body)
    await targets.prepare(doc.get("callback"), field="callback", settings=settings)
    return await transactions.write(db, _create_batch, actor, doc, clock.now())


def _create_batch(
    session: Session, actor: Actor, doc: dict[str, Any], now: datetime
) -> dict[str, Any]:
    project = batch_control.require_project(
        session, actor, opt_str(doc, "project_id"), opt_str(doc, "project_name")
    )
    v1_body = {
        "project": project.name,
        "name": doc.get("name"),
        "callback": doc.get("callback"),
        "metadata": doc.get("metadata"),
        "staging_batch": optional_bool(doc, "staging_batch") or False,
    }
    return _one(session, service.create_batch(session, actor, v1_body, now))


@router.post("/batch/finalize", summary="Finalize a staging batch")
def finalize_batch(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    batch_id, batch_name = _target(body)
    with db.unit_of_work() as session:
        batch = batch_control.require_batch(session, actor, batch_id, batch_name)
        return _one(session, batches.finalize_batch(session, actor, batch.name, clock.now()))


@router.post("/batch/pause", summary="Pause an in-progress batch")
def pause_batch(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    batch_id, batch_name = _target(body)
    with db.unit_of_work() as session:
        batch = batch_control.require_batch(session, actor, batch_id, batch_name, for_update=True)
        batch = batch_control.pause(session, actor, batch, clock.now())
        return {"batch": _one(session, batch), "message": f"Batch '{batch.name}' paused."}


@router.post("/batch/resume", summary="Resume a paused batch")
def resume_batch(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    batch_id, batch_name = _target(body)
    with db.unit_of_work() as session:
        batch = batch_control.require_batch(session, actor, batch_id, batch_name, for_update=True)
        batch = batches.resume_batch(session, actor, batch, clock.now())
        return {"batch": _one(session, batch), "message": f"Batch '{batch.name}' resumed."}


@router.post("/batch/cancel", summary="Cancel a batch and its pending tasks")
def cancel_batch(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    batch_id, batch_name = _target(body)
    with db.unit_of_work() as session:
        batch = batch_control.require_batch(session, actor, batch_id, batch_name, for_update=True)
        batch, n = batches.cancel_batch(session, actor, batch, clock.now())
        message = f"Batch '{batch.name}' cancelled; {n} pending task(s) canceled."
        return {"batch": _one(session, batch), "message": message}


@router.post("/batch/metadata", summary="Set a batch's metadata (merge=true deep-merges)")
def set_batch_metadata(
    actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    doc = body_object(body)
    if "metadata" not in doc:
        raise ValidationError("'metadata' is required.", field="metadata")
    with db.unit_of_work() as session:
        batch = batch_control.require_batch(
            session, actor, opt_str(doc, "batch_id"), opt_str(doc, "batch_name"), for_update=True
        )
        batch = batch_control.set_metadata(
            session, actor, batch, doc["metadata"], merge=merge_flag(doc), now=clock.now()
        )
        return _one(session, batch)
