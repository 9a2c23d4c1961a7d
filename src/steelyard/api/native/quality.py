"""Worker quality on the native API: a worker's own record and appeal (session), and operators'
list and decision on pauses (``Credential.OPERATOR``). The logic is in
``workflow.quality_view`` and ``workflow.pauses``."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from pydantic import BaseModel, Field

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep
from steelyard.api.scale_v1 import bodies
from steelyard.projects import service as projects
from steelyard.timefmt import iso
from steelyard.workflow import pauses, quality_view
from steelyard.workflow.models import WorkerPause

#: Included by ``api.native.router`` (which adds the ``/api`` prefix).
worker = credential_router(Credential.SESSION, tags=["quality"])
operator = credential_router(Credential.OPERATOR, tags=["quality"])


@worker.get(
    "/work/quality",
    summary="My quality per project: gold accuracy, confusion, pause, the gold I got wrong",
    description="For the signed-in worker, per project they worked on (or only `project`): "
    "labels counted, accuracy on the project's check questions (gold) with a 95% Jeffreys "
    "interval over the answers a pause would rest on, the confusion of right against given "
    "answers (categorical types), the project's worker model's estimate (from all labels, not "
    "gold), the project's threshold, their pause if any (reason, evidence, how to appeal) and "
    "the gold items they got wrong with their answer and the right one.",
)
def my_quality(
    actor: ActorDep,
    db: DbDep,
    project: str | None = Query(None, description="only this project"),
) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return quality_view.my_quality(session, actor, project)


class AppealBody(BaseModel):
    appeal: str = Field(description="Why the pause should be lifted (up to 5,000 characters).")


@worker.post(
    "/work/pauses/{pause_id}/appeal",
    summary="Appeal my pause",
    description="Moves my pause from `paused` to `appealed`; someone other than me decides. "
    "A pause can be appealed once.",
    openapi_extra=bodies.body(AppealBody),
)
def appeal(pause_id: str, body: BodyDep, actor: ActorDep, db: DbDep, clock: ClockDep) -> Any:
    with db.unit_of_work() as session:
        pause = pauses.appeal(session, actor, pause_id, body, clock.now())
        return quality_view.pause_for_worker(pause)


def _pause_out(view: pauses.PauseView) -> dict[str, Any]:
    p: WorkerPause = view.pause
    return {
        "id": p.id,
        "project": view.project,
        "worker": view.worker,
        "status": p.status,
        "reason": p.reason,
        "evidence": p.evidence,
        "created_at": iso(p.created_at),
        "appeal": p.appeal,
        "appealed_at": iso(p.appealed_at) if p.appealed_at else None,
        "decided_by": view.decided_by,
        "decided_at": iso(p.decided_at) if p.decided_at else None,
        "decision": p.decision,
    }


_WHO = (
    " Takes the organization's API key or the session of a manager, admin or owner; an "
    "annotator's session gets 403."
)


@operator.get(
    "/pauses",
    summary="Workers paused for quality, newest first",
    description="Each with its project, worker (email), status (paused, appealed, lifted, "
    "upheld), reason, evidence, appeal and decision." + _WHO,
)
def list_pauses(
    actor: ActorDep,
    db: DbDep,
    status: str | None = Query(None, description="paused | appealed | lifted | upheld"),
    project: str | None = Query(None, description="only this project"),
    limit: int = Query(100, description="at most this many (1 to 1,000)"),
) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        project_id = projects.project_ref(session, actor, name=project).id if project else None
        views = pauses.list_pauses(
            session, actor, status=status, project_id=project_id, limit=limit
        )
        return [_pause_out(v) for v in views]


class DecideBody(BaseModel):
    decision: str = Field(description="`lift` (back to work) or `uphold` (after an appeal).")
    comment: str | None = Field(None, description="Why; required to uphold.")


@operator.post(
    "/pauses/{pause_id}/decide",
    summary="Decide on a pause: lift or uphold",
    description="Only a person can decide: the session of a manager, admin or owner who is not "
    "the paused worker (an API key or the worker themselves get 403). `lift` applies to a "
    "pause that is paused, appealed or upheld, and restarts the worker's evidence window; "
    "`uphold` to an appealed one.",
    openapi_extra=bodies.body(DecideBody),
)
def decide(pause_id: str, body: BodyDep, actor: ActorDep, db: DbDep, clock: ClockDep) -> Any:
    with db.unit_of_work() as session:
        pause = pauses.decide(session, actor, pause_id, body, clock.now())
        project, worker_email, decider = pauses.names(session, pause)
        return _pause_out(pauses.PauseView(pause, project, worker_email, decider))
