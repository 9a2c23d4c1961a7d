"""Steelyard's native API (``/api``): the labeling path the UI drives, (from ``auth``)
sign-in, sessions and invitations, (from ``reports``) reports for operators, and (from
``review``) the reviewer's path."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from steelyard.accounts.schemas import Actor
from steelyard.api import transactions
from steelyard.api.auth import Credential, actor_of, credential_router
from steelyard.api.deps import ActorDep, DbDep, json_body
from steelyard.api.native import auth, pay, reports, review
from steelyard.api.native import quality as worker_quality
from steelyard.api.responses import JSONDoc
from steelyard.api.scale_v1 import bodies
from steelyard.db.engine import Database
from steelyard.errors import NotFound
from steelyard.pay import view as pay_view
from steelyard.tasks.models import QualityTask
from steelyard.tasks.serialize import quality_task_for_worker, task_for_worker
from steelyard.timefmt import iso
from steelyard.workflow import qualification
from steelyard.workflow import quality_answers as answers
from steelyard.workflow import quality_serving as serving
from steelyard.workflow import service as workflow
from steelyard.workflow.models import Assignment, QualityAnswer

#: The labeling path takes a worker's session token; ``auth`` declares its own routes.
router = credential_router(Credential.SESSION, prefix="/api")


class QualificationOut(BaseModel):
    required: int = Field(description="Training tasks to answer in an attempt.")
    answered: int = Field(description="Answered so far in the current attempt.")
    score: float | None = Field(
        description="Mean score in [0, 1] of the current attempt's answers (of the passing "
        "attempt once passed); null before the first answer."
    )
    status: Literal["not_started", "in_progress", "passed", "failed"]
    attempt: int = Field(description="The current attempt, from 1.")
    attempts_left: int = Field(description="Retakes still allowed after the current attempt.")
    pass_mark: float = Field(description="The mean score an attempt must reach.")


class WorkProjectOut(BaseModel):
    name: str = Field(description="Use it as `?project=` on `POST /api/work/next`.")
    type: str = Field(description="The task type, e.g. `categorization`.")
    qualification: QualificationOut | None = Field(
        description="Null when the project has no qualification: its live tasks are open."
    )


@router.get(
    "/work/projects",
    tags=["work"],
    summary="The projects you may work on, with your qualification in each",
    description="Live projects open to you (a project with Studio assignments only if you are "
    "assigned), by name. A project with a qualification serves its training tasks first (from "
    "`POST /api/work/next`, with or without `?project=`), each submit answered with the "
    "expected response and your score; its live tasks come once your mean score over the "
    "required training tasks reaches the pass mark. A failed attempt is retaken by asking "
    "`next` for that project while `attempts_left` > 0.",
)
def work_projects(actor: ActorDep, db: DbDep) -> list[WorkProjectOut]:
    with db.unit_of_work(write=False) as session:
        found = qualification.worker_projects(session, actor)
    return [
        WorkProjectOut(
            name=p.name,
            type=p.type,
            qualification=QualificationOut(**p.qualification.to_doc())
            if p.qualification is not None
            else None,
        )
        for p in found
    ]


@router.post(
    "/work/next",
    tags=["work"],
    summary="Lease the next task (204 when there is none)",
    description="Answers `{assignment_id, task, lease_expires_at}`: `task` is what to label "
    "(`task_id`, `type`, `project`, `instruction`, the params the type shows). A project with a "
    "qualification you have not passed serves its training tasks first, one at a time; such an "
    "offer adds `training` (`required`, `answered`, `score`, `status`, `attempt`, "
    "`attempts_left`, `pass_mark`), and its live tasks wait until you pass. Naming with "
    "`?project=` a project whose qualification you failed retakes it while attempts are left, "
    "else answers 403. You hold one lease at a time: asking again returns it. A project that "
    "pays adds `pay` (`rate_minor`, `currency`, `estimated_seconds`: the median of its recent "
    "items, null before any), shown before you start.",
    responses={
        204: {"description": "No task is available now."},
        403: {"description": "The project is not open to you (assignments, qualification)."},
    },
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
    # Gold and qualification first where the organization has them (one indexed probe when
    # it has none; see workflow.quality_serving).
    lease = serving.next_item(
        session, actor, project_name=project, now=now, lease_seconds=lease_seconds
    )
    if lease is None:
        return None
    if isinstance(lease, serving.QualityLease):
        return _with_pay(session, _quality_offer(lease), lease.answer.project_id)
    offer = {
        "assignment_id": lease.assignment.id,
        "task": task_for_worker(lease.task, project_name=lease.project_name),
        "lease_expires_at": iso(lease.assignment.expires_at),
    }
    return _with_pay(session, offer, lease.task.project_id)


def _with_pay(session: Session, offer: dict[str, Any], project_id: str | None) -> dict[str, Any]:
    """The rate, currency and estimated time, shown before the worker starts, for live and
    quality items alike (a missing ``pay`` would tell gold apart)."""
    pay_offer = pay_view.cached_offer(session, project_id) if project_id is not None else None
    if pay_offer is not None:
        offer["pay"] = pay_offer
    return offer


def _quality_offer(lease: serving.QualityLease) -> dict[str, Any]:
    """A quality lease in exactly the shape of a live one; a training item (not hidden) adds
    where the worker stands in the qualification."""
    offer: dict[str, Any] = {
        "assignment_id": lease.answer.id,
        "task": quality_task_for_worker(
            lease.item,
            task_id=lease.task_id,
            instruction=lease.instruction,
            project_name=lease.project_name,
        ),
        "lease_expires_at": iso(lease.answer.expires_at),
    }
    if lease.qualification is not None:
        offer["training"] = lease.qualification.to_doc()
    return offer


class SubmitBody(BaseModel):
    """Documents the body; the handler reads it raw and the task type validates ``response``,
    naming the field (``response.<field>``) when it does not fit the task."""

    response: dict[str, Any] = Field(description="The label, in the task type's response shape.")


@router.post(
    "/work/{assignment_id}/submit",
    tags=["work"],
    summary="Submit a response",
    description="Answers `{assignment_id, task_id, status, submitted_at}` (`status`: "
    "`completed` when this label was the last the task needed, else `pending`). For a training "
    "task it adds `feedback` (`expected_response`, your `score` in [0, 1], `correct`) and "
    "`qualification` (as on `next`'s `training`).",
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
) -> workflow.Submission | answers.QualitySubmission:
    with db.unit_of_work(write=False) as session:
        try:
            target = workflow.submit_target(session, actor, assignment_id, body, now)
        except NotFound:
            # Not a live assignment: an evaluation or training lease, or nothing (same 404).
            quality_target = answers.submit_target(session, actor, assignment_id, body, now)
            return answers.check_submission(quality_target, body)
    return workflow.check_submission(target, body)


def _submit(
    session: Session,
    actor: Actor,
    checked: workflow.Submission | answers.QualitySubmission,
    now: datetime,
) -> dict[str, Any]:
    if isinstance(checked, answers.QualitySubmission):
        return _quality_submit(session, actor, checked, now)
    stored = workflow.submit(session, actor, checked, now)
    return {
        "assignment_id": stored.assignment_id,
        "task_id": stored.task_id,
        # "completed" when this label was the last the task needed; else it waits for others.
        "status": stored.status,
        "submitted_at": iso(stored.submitted_at),
    }


def _quality_submit(
    session: Session, actor: Actor, checked: answers.QualitySubmission, now: datetime
) -> dict[str, Any]:
    """As a live label's answer (evaluation: nothing more, no score); a training answer adds
    the feedback and the qualification's state."""
    result = answers.submit(session, actor, checked, now)
    answer = result.answer
    item = session.get(QualityTask, answer.quality_task_id)
    doc: dict[str, Any] = {
        "assignment_id": answer.id,
        "task_id": answers.shown_task_id(item, answer.user_id) if item else None,
        "status": checked.live_status,
        "submitted_at": iso(answer.submitted_at) if answer.submitted_at else None,
    }
    if answer.kind == qualification.TRAINING:
        doc["status"] = "completed"
        doc["feedback"] = {
            "expected_response": checked.expected,
            "score": checked.score,
            "correct": checked.correct,
        }
        if result.qualification is not None:
            doc["qualification"] = result.qualification.to_doc()
    return doc


def _assignment_view(assignment: Assignment | QualityAnswer) -> dict[str, Any]:
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
    try:
        return _assignment_view(
            workflow.heartbeat(session, actor, assignment_id, now, lease_seconds)
        )
    except NotFound:
        answer = answers.heartbeat(session, actor, assignment_id, now, lease_seconds)
        return _assignment_view(answer)


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
    try:
        assignment = workflow.give_back(session, actor, assignment_id, skip=skip, now=now)
    except NotFound:
        return _assignment_view(
            answers.give_back(session, actor, assignment_id, skip=skip, now=now)
        )
    return _assignment_view(assignment)


# After the work routes, which are matched first (see ``api.app``): sign-in, sessions and
# invitations; reports for operators and customers (an API key or an operator's session); the
# reviewer's path (a reviewer's, manager's, admin's or owner's session); worker quality (my
# record and appeal, by session; pauses for operators).
router.include_router(auth.router)
router.include_router(reports.router)
router.include_router(review.router)
router.include_router(worker_quality.worker)
router.include_router(worker_quality.operator)
# A worker's earnings (session).
router.include_router(pay.worker)
