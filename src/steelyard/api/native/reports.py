"""Reports for operators and customers (``/api/projects/...``, ``/api/tasks/.../labels``).

Each route takes the organization's API key (Basic or Bearer, as on ``/v1``; a test key sees
the test environment) or the session token of a manager, admin or owner (``Credential.
OPERATOR``); an annotator's session is refused with 403. The handlers are plain ``def``
(FastAPI runs them in the thread pool) around read units of work; the logic is in
``workflow.reports`` and ``workflow.agreement_report``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query
from pydantic import BaseModel, Field

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, ClockDep, DbDep, path_name
from steelyard.timefmt import iso
from steelyard.workflow import agreement_report, reports

#: Included by ``api.native.router`` (which adds the ``/api`` prefix).
router = credential_router(Credential.OPERATOR, tags=["reports"])

_WHO = (
    " Takes the organization's API key (Basic or Bearer) or the session token of a manager, "
    "admin or owner; an annotator's session gets 403."
)


@router.get(
    "/projects/{name}/progress",
    summary="Task counts of a project by status, overall and per batch",
    description="Counts from the per-scope counters kept with every task change: as fast at "
    "a million tasks as at ten. Batches that have tasks are listed oldest first; tasks outside "
    "any batch come last with `batch: null`." + _WHO,
)
def progress(name: str, actor: ActorDep, db: DbDep) -> reports.Progress:
    # ``review``: review rounds by state (awaiting, in_review, accepted, fixed, rejected).
    with db.unit_of_work(write=False) as session:
        return reports.progress(session, actor, path_name(name))


class LabelOut(BaseModel):
    worker: str = Field(description="The worker's email.")
    response: dict[str, Any] = Field(description="What the worker submitted.")
    submitted_at: str = Field(description="ISO-8601 UTC.")
    superseded: bool = Field(
        description="True for a label rejected with the task's answer (by a customer's audit "
        "or a reviewer): kept, but no longer aggregated nor counted in agreement."
    )


@router.get(
    "/tasks/{task_id}/labels",
    summary="The labels workers submitted for a task, oldest first",
    description="Each label names its worker by email (the organization sees its team's "
    "emails on /v1/teams too)." + _WHO,
)
def task_labels(task_id: str, actor: ActorDep, db: DbDep) -> list[LabelOut]:
    with db.unit_of_work(write=False) as session:
        labels = reports.task_labels(session, actor, task_id)
    return [
        LabelOut(
            worker=x.worker,
            response=x.response,
            submitted_at=iso(x.submitted_at),
            superseded=x.superseded,
        )
        for x in labels
    ]


@router.get(
    "/projects/{name}/agreement",
    summary="Inter-annotator agreement of a project's labels",
    description="Per question (`category`, `taxonomies.<name>`): percent agreement, "
    "over the labels that count (superseded ones left out), "
    "Krippendorff's alpha (nominal), Fleiss' kappa, and Cohen's kappa when exactly two workers "
    "answered. Computed for categorical task types; for others `computed` is false and "
    "`reason` says why. Over the labels of the project's newest tasks, at most "
    f"{agreement_report.MAX_LABELS:,} (`truncated` says when older ones were left out)." + _WHO,
)
def agreement(name: str, actor: ActorDep, db: DbDep) -> agreement_report.ProjectAgreement:
    with db.unit_of_work(write=False) as session:
        sample = agreement_report.read_labels(session, actor, path_name(name))
    # The statistics run with no transaction open.
    return agreement_report.compute(sample)


@router.get(
    "/projects/{name}/workers",
    summary="The worker table of a project",
    description="Per worker (by email): labels submitted, leases taken, leases expired, tasks "
    "skipped, mean active seconds per submitted label; accuracy on gold (`gold_accuracy`, "
    "`gold_answered`, `gold_interval`: 95% Jeffreys) over the answers a pause would rest on, and "
    "`pause`, the status of the worker's pause from the project; `notes` says how." + _WHO,
)
def workers(name: str, actor: ActorDep, db: DbDep, clock: ClockDep) -> reports.WorkerTable:
    with db.unit_of_work(write=False) as session:
        return reports.worker_table(session, actor, path_name(name), clock.now())


class QueueItemOut(BaseModel):
    task_id: str
    review_id: str
    reason: str = Field(description="Why it waits: `sampled`, `all` or `disagreement`.")
    candidate: dict[str, Any] = Field(description="The aggregate of its labels.")
    confidence: float | None = Field(description="The aggregate's confidence.")
    waiting_since: str = Field(description="ISO-8601 UTC: when its labels were aggregated.")
    in_review: bool = Field(description="Whether a reviewer holds it now.")


class ReviewQueueOut(BaseModel):
    project: str
    items: list[QueueItemOut]
    next_token: str | None = Field(description="Pass back for the next page; null on the last.")


@router.get(
    "/projects/{name}/review-queue",
    summary="The tasks of a project waiting for review, oldest first",
    description="Each with why it waits (the project's `params.review` mode), the aggregated "
    "candidate and its confidence, and whether a reviewer holds it now. Keyset-paged: pass "
    "`next_token` back." + _WHO,
)
def review_queue(
    name: str,
    actor: ActorDep,
    db: DbDep,
    limit: int = Query(100, ge=1, le=500),
    next_token: str | None = Query(None),
) -> ReviewQueueOut:
    with db.unit_of_work(write=False) as session:
        queue = reports.review_queue(
            session, actor, path_name(name), limit=limit, next_token=next_token
        )
    return ReviewQueueOut(
        project=queue.project,
        items=[
            QueueItemOut(
                task_id=x.task_id,
                review_id=x.review_id,
                reason=x.reason,
                candidate=x.candidate,
                confidence=x.confidence,
                waiting_since=iso(x.waiting_since),
                in_review=x.in_review,
            )
            for x in queue.items
        ],
        next_token=queue.next_token,
    )
