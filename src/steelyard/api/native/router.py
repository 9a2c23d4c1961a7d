"""Steelyard's native API (``/api``): the labeling path the UI drives, (from ``auth``)
sign-in, sessions and invitations, and (from ``reports``) reports for operators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from steelyard.accounts.schemas import Actor
from steelyard.api import transactions
from steelyard.api.auth import Credential, actor_of, credential_router
from steelyard.api.deps import json_body
from steelyard.api.native import auth, reports
from steelyard.api.responses import JSONDoc
from steelyard.api.scale_v1 import bodies
from steelyard.db.engine import Database
from steelyard.tasks.serialize import task_for_worker
from steelyard.timefmt import iso
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment

#: The labeling path takes a worker's session token; ``auth`` declares its own routes.
router = credential_router(Credential.SESSION, prefix="/api")


@router.post(
    "/work/next",
    tags=["work"],
    summary="Lease the next task (204 when there is none)",
    responses={204: {"description": "No task is available now."}},
)
async def next_task(
    request: Request,
    project: str | None = Query(None, description="stay within this project"),
) -> Response:
    # A labeler's hot path: the caller is taken here rather than through FastAPI's dependency
    # solving (as for task create), and the lease is a short write that on SQLite runs on the
    # event loop (see api.transactions).
    actor = actor_of(request)
    state = request.app.state
    offer = await transactions.write(
        state.db, _lease_next, actor, project, state.clock.now(), state.settings.lease_seconds
    )
    return Response(status_code=204) if offer is None else JSONDoc(offer)


def _lease_next(
    session: Session, actor: Actor, project: str | None, now: datetime, lease_seconds: int
) -> dict[str, Any] | None:
    lease = workflow.next_assignment(
        session, actor, project_name=project, now=now, lease_seconds=lease_seconds
    )
    if lease is None:
        return None
    return {
        "assignment_id": lease.assignment.id,
        "task": task_for_worker(lease.task, project_name=lease.project_name),
        "lease_expires_at": iso(lease.assignment.expires_at),
    }


class SubmitBody(BaseModel):
    """Documents the body; the handler reads it raw and the task type validates ``response``,
    naming the field (``response.<field>``) when it does not fit the task."""

    response: dict[str, Any] = Field(description="The label, in the task type's response shape.")


@router.post(
    "/work/{assignment_id}/submit",
    tags=["work"],
    summary="Submit a response",
    openapi_extra=bodies.body(SubmitBody),
)
async def submit(assignment_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    body = await json_body(request)
    state = request.app.state
    now = state.clock.now()
    # The response is checked in a worker thread with no transaction open; the write only
    # stores it (nothing large under the write lock).
    checked = await run_in_threadpool(_check, state.db, actor, assignment_id, body, now)
    return JSONDoc(await transactions.write(state.db, _submit, actor, checked, now))


def _check(
    db: Database, actor: Actor, assignment_id: str, body: Any, now: datetime
) -> workflow.Submission:
    with db.unit_of_work(write=False) as session:
        target = workflow.submit_target(session, actor, assignment_id, body, now)
    return workflow.check_submission(target, body)


def _submit(
    session: Session, actor: Actor, checked: workflow.Submission, now: datetime
) -> dict[str, Any]:
    stored = workflow.submit(session, actor, checked, now)
    return {
        "assignment_id": stored.assignment_id,
        "task_id": stored.task_id,
        # "completed" when this label was the last the task needed; else it waits for others.
        "status": stored.status,
        "submitted_at": iso(stored.submitted_at),
    }


def _assignment_view(assignment: Assignment) -> dict[str, Any]:
    return {
        "assignment_id": assignment.id,
        "status": assignment.status,
        "lease_expires_at": iso(assignment.expires_at),
    }


@router.post(
    "/work/{assignment_id}/heartbeat",
    tags=["work"],
    summary="Extend the lease (to now + the lease length)",
)
async def heartbeat(assignment_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    state = request.app.state
    return JSONDoc(
        await transactions.write(
            state.db,
            _heartbeat,
            actor,
            assignment_id,
            state.clock.now(),
            state.settings.lease_seconds,
        )
    )


def _heartbeat(
    session: Session, actor: Actor, assignment_id: str, now: datetime, lease_seconds: int
) -> dict[str, Any]:
    return _assignment_view(workflow.heartbeat(session, actor, assignment_id, now, lease_seconds))


@router.post(
    "/work/{assignment_id}/release",
    tags=["work"],
    summary="Give the task back (it may be offered to this worker again)",
)
async def release(assignment_id: str, request: Request) -> JSONDoc:
    return await _give_back(request, assignment_id, skip=False)


@router.post(
    "/work/{assignment_id}/skip",
    tags=["work"],
    summary="Give the task back and never be offered it again",
)
async def skip(assignment_id: str, request: Request) -> JSONDoc:
    return await _give_back(request, assignment_id, skip=True)


async def _give_back(request: Request, assignment_id: str, *, skip: bool) -> JSONDoc:
    actor = actor_of(request)
    state = request.app.state
    return JSONDoc(
        await transactions.write(
            state.db, _give_back_in, actor, assignment_id, skip, state.clock.now()
        )
    )


def _give_back_in(
    session: Session, actor: Actor, assignment_id: str, skip: bool, now: datetime
) -> dict[str, Any]:
    assignment = workflow.give_back(session, actor, assignment_id, skip=skip, now=now)
    return _assignment_view(assignment)


# After the work routes, which are matched first (see ``api.app``): sign-in, sessions and
# invitations; reports for operators and customers (an API key or an operator's session).
router.include_router(auth.router)
router.include_router(reports.router)
