"""Steelyard's native API (``/api``): sign-in and the labeling path the UI drives."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from steelyard.accounts import service as accounts
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep, SettingsDep
from steelyard.tasks import repository
from steelyard.tasks.serialize import task_to_scale
from steelyard.timefmt import iso
from steelyard.workflow import service as workflow

router = APIRouter(prefix="/api")


class LoginBody(BaseModel):
    email: str
    password: str


class TokenOut(BaseModel):
    token: str


@router.post("/auth/login", tags=["auth"], summary="Sign in; returns a bearer token")
def login(body: LoginBody, db: DbDep, clock: ClockDep) -> TokenOut:
    with db.unit_of_work() as session:
        token = accounts.login(session, email=body.email, password=body.password, now=clock.now())
    return TokenOut(token=token)


@router.post(
    "/work/next",
    tags=["work"],
    summary="Lease the next task (204 when there is none)",
    responses={204: {"description": "No task is available now."}},
)
def next_task(
    actor: ActorDep,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    project: str | None = Query(None, description="stay within this project"),
) -> Any:
    with db.unit_of_work() as session:
        lease = workflow.next_assignment(
            session,
            actor,
            project_name=project,
            now=clock.now(),
            lease_seconds=settings.lease_seconds,
        )
        if lease is None:
            return Response(status_code=204)
        project_names, batch_names = repository.names_for(session, [lease.task])
        task = task_to_scale(
            lease.task,
            project_name=project_names.get(lease.task.project_id or ""),
            batch_name=batch_names.get(lease.task.batch_id or ""),
        )
        return {
            "assignment_id": lease.assignment.id,
            "task": task,
            "lease_expires_at": iso(lease.assignment.expires_at),
        }


@router.post("/work/{assignment_id}/submit", tags=["work"], summary="Submit a response")
def submit(
    assignment_id: str, actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        assignment, task = workflow.submit(session, actor, assignment_id, body, clock.now())
        return {
            "assignment_id": assignment.id,
            "task_id": task.task_id,
            "status": task.status,
            "submitted_at": iso(assignment.submitted_at) if assignment.submitted_at else None,
        }
