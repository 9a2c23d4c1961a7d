"""The reviewer's path (``/api/review/...``): take a task waiting for review with a lease, then
accept, fix or reject it (``workflow.review``). A reviewer's, manager's, admin's or owner's
session token; never on a task the caller labeled."""

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
from steelyard.api.responses import JSONDoc
from steelyard.api.scale_v1 import bodies
from steelyard.db.engine import Database
from steelyard.tasks import repository
from steelyard.tasks.models import Task
from steelyard.tasks.serialize import task_for_worker
from steelyard.timefmt import iso
from steelyard.workflow import review
from steelyard.workflow.models import Review

#: Included by ``api.native.router`` (which adds the ``/api`` prefix).
router = credential_router(Credential.SESSION, tags=["review"])


@router.post(
    "/review/next",
    summary="Lease the next task waiting for review (204 when there is none)",
    description="The oldest task waiting for review (of `project` if given) that the caller did "
    "not label, with the aggregated candidate, its confidence and every label (worker and "
    "time). A caller holds one review lease at a time: asking again returns it. The lease "
    "lasts as a labeling lease does; extend it with `heartbeat`.",
    responses={204: {"description": "No task is waiting for review now."}},
)
async def next_review(
    request: Request,
    project: str | None = Query(None, description="stay within this project"),
) -> Response:
    actor = actor_of(request)
    state = request.app.state
    offer = await transactions.write(
        state.db, _lease_next, actor, project, state.clock.now(), state.settings.lease_seconds
    )
    return Response(status_code=204) if offer is None else JSONDoc(offer)


def _lease_next(
    session: Session, actor: Actor, project: str | None, now: datetime, lease_seconds: int
) -> dict[str, Any] | None:
    lease = review.next_review(
        session, actor, project_name=project, now=now, lease_seconds=lease_seconds
    )
    if lease is None:
        return None
    project_names, _ = repository.names_for(session, [lease.task])
    task = task_for_worker(lease.task, project_name=project_names.get(lease.task.project_id or ""))
    return {
        **_view(lease.review),
        "task": task,
        "reason": lease.review.reason,
        "candidate": lease.review.candidate,
        "confidence": lease.review.confidence,
        "labels": [
            {"worker": x.worker, "response": x.response, "submitted_at": iso(x.submitted_at)}
            for x in lease.labels
        ],
    }


def _view(item: Review) -> dict[str, Any]:
    return {
        "review_id": item.id,
        "status": item.status,
        "lease_expires_at": iso(item.expires_at) if item.expires_at else None,
    }


def _decided(item: Review, task: Task) -> dict[str, Any]:
    return {
        "review_id": item.id,
        "decision": item.status,
        "task_id": task.task_id,
        # "completed" after accept and fix; "pending" after reject (labeled again).
        "task_status": task.status,
        "active_seconds": item.active_seconds,
    }


@router.post("/review/{review_id}/heartbeat", summary="Extend the review lease")
async def heartbeat(review_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    state = request.app.state
    return JSONDoc(
        await transactions.write(
            state.db,
            _heartbeat,
            actor,
            review_id,
            state.clock.now(),
            state.settings.lease_seconds,
        )
    )


def _heartbeat(
    session: Session, actor: Actor, review_id: str, now: datetime, lease_seconds: int
) -> dict[str, Any]:
    return _view(review.heartbeat(session, actor, review_id, now, lease_seconds))


@router.post("/review/{review_id}/release", summary="Give the review back to the queue")
async def release(review_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    state = request.app.state
    return JSONDoc(await transactions.write(state.db, _release, actor, review_id))


def _release(session: Session, actor: Actor, review_id: str) -> dict[str, Any]:
    return _view(review.release(session, actor, review_id))


@router.post(
    "/review/{review_id}/accept",
    summary="Accept the candidate: the task completes with it",
)
async def accept(review_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    state = request.app.state
    return JSONDoc(await transactions.write(state.db, _accept, actor, review_id, state.clock.now()))


def _accept(session: Session, actor: Actor, review_id: str, now: datetime) -> dict[str, Any]:
    return _decided(*review.accept(session, actor, review_id, now))


class FixBody(BaseModel):
    """Documents the body; the task type validates ``response`` as it does a worker's."""

    response: dict[str, Any] = Field(description="The corrected answer, in the task's shape.")


@router.post(
    "/review/{review_id}/fix",
    summary="Fix the answer: the task completes with it, the candidate kept in prior_responses",
    openapi_extra=bodies.body(FixBody),
)
async def fix(review_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    body = await json_body(request)
    state = request.app.state
    now = state.clock.now()
    # Checked in a worker thread with no transaction open, as a submit is.
    response = await run_in_threadpool(_check_fix, state.db, actor, review_id, body)
    return JSONDoc(await transactions.write(state.db, _fix, actor, review_id, response, now))


def _check_fix(db: Database, actor: Actor, review_id: str, body: Any) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        target = review.fix_target(session, actor, review_id, body)
    return review.check_fix(target, body)


def _fix(
    session: Session, actor: Actor, review_id: str, response: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return _decided(*review.fix(session, actor, review_id, response, now))


class RejectBody(BaseModel):
    reason: str = Field(description="Why; shown to the workers who label the task again.")


@router.post(
    "/review/{review_id}/reject",
    summary="Reject: the labels are superseded and other workers label the task again",
    openapi_extra=bodies.body(RejectBody),
)
async def reject(review_id: str, request: Request) -> JSONDoc:
    actor = actor_of(request)
    reason = review.read_reason(await json_body(request))
    state = request.app.state
    return JSONDoc(
        await transactions.write(state.db, _reject, actor, review_id, reason, state.clock.now())
    )


def _reject(
    session: Session, actor: Actor, review_id: str, reason: str, now: datetime
) -> dict[str, Any]:
    return _decided(*review.reject(session, actor, review_id, reason, now))
