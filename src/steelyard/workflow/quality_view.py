"""What a worker sees of their own quality (``GET /api/work/quality``), per project.

Scoped to the caller's organization and to the caller: every query filters on both. Per
project: labels counted (not superseded), the gold record that a pause would rest on
(``worker_quality.gold_record``: accuracy with its interval, the window), the confusion of
expected against given answers on that gold for categorical types, the project's fitted worker
model's estimate of them (all their labels, not gold; labelled as such), the threshold, their
blocking pause if any (reason, evidence, how to appeal), and the gold items they got wrong in
that window with their answer and the right one, each shown as they saw it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import Forbidden
from steelyard.projects import service as projects
from steelyard.projects.models import Project
from steelyard.quality.gold import gold_confusion, model_estimate
from steelyard.tasks.models import QualityTask, Task
from steelyard.tasks.serialize import quality_task_for_worker
from steelyard.tasktypes import registry
from steelyard.timefmt import iso
from steelyard.workflow import worker_models, worker_quality
from steelyard.workflow.agreement_report import categorical_answers
from steelyard.workflow.models import Label, QualityAnswer, WorkerPause
from steelyard.workflow.quality_answers import shown_task_id

#: Wrong answers listed per project, newest first.
MAX_MISTAKES = 100
APPEAL_HOW = (
    'POST /api/work/pauses/{id}/appeal with {"appeal": "your reasons"}; a manager, admin or '
    "owner other than you decides, and you see the decision here."
)


def _worker(actor: Actor) -> str:
    if actor.kind != "user" or actor.user_id is None:
        raise Forbidden("Only a signed-in worker has a quality record.")
    return actor.user_id


def my_quality(session: Session, actor: Actor, project_name: str | None) -> list[dict[str, Any]]:
    user_id = _worker(actor)
    labels = _label_counts(session, actor, user_id)
    if project_name:
        ref = projects.project_ref(session, actor, name=project_name)
        names = {ref.id: ref.name}
    else:
        ids = set(labels) | _gold_projects(session, actor, user_id)
        names = dict(
            session.execute(
                select(Project.id, Project.name).where(
                    Project.org_id == actor.org_id,
                    Project.is_test == actor.is_test,
                    Project.id.in_(ids),
                )
            ).all()
        )
    return [
        _project(session, actor, user_id, project_id, name, labels.get(project_id, 0))
        for project_id, name in sorted(names.items(), key=lambda item: item[1])
    ]


def _label_counts(session: Session, actor: Actor, user_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Task.project_id, func.count(Label.id))
        .join(Task, Task.seq == Label.task_seq)
        .where(
            Label.user_id == user_id,
            Label.org_id == actor.org_id,
            Label.superseded == false(),
            Task.org_id == actor.org_id,
            Task.is_test == actor.is_test,
        )
        .group_by(Task.project_id)
    )
    return {project: int(n) for project, n in rows if project is not None}


def _gold_projects(session: Session, actor: Actor, user_id: str) -> set[str]:
    answered = select(QualityAnswer.project_id).where(
        QualityAnswer.user_id == user_id,
        QualityAnswer.org_id == actor.org_id,
        QualityAnswer.kind == "evaluation",
    )
    paused = select(WorkerPause.project_id).where(
        WorkerPause.user_id == user_id, WorkerPause.org_id == actor.org_id
    )
    return set(session.scalars(answered.union(paused)))


def _project(
    session: Session, actor: Actor, user_id: str, project_id: str, name: str, labels: int
) -> dict[str, Any]:
    setting = worker_quality.project_setting(session, actor.org_id, project_id)
    window = setting.window if setting is not None else worker_quality.DEFAULT_WINDOW
    record = worker_quality.gold_record(session, actor.org_id, project_id, user_id, window)
    acc = record.accuracy
    rows = _answers_with_items(session, actor, [a.answer_id for a in record.answers])
    pause = worker_quality.blocking_pause(session, actor.org_id, project_id, user_id)
    return {
        "project": name,
        "labels": labels,
        "gold": {
            "answered": acc.answered,
            "correct": acc.correct,
            "accuracy": acc.accuracy,
            "interval": {
                "low": acc.low,
                "high": acc.high,
                "level": acc.level,
                "method": acc.method,
            },
            "since": iso(record.since) if record.since is not None else None,
            "window": window,
        },
        "confusion": _confusion(rows),
        "model_estimate": _model(session, project_id, user_id),
        "threshold": None
        if setting is None
        else {"min_accuracy": setting.min_accuracy, "min_gold": setting.min_gold},
        "pause": pause_for_worker(pause) if pause is not None else None,
        "mistakes": [
            {
                "assignment_id": answer_id,
                "task": quality_task_for_worker(
                    item,
                    task_id=shown_task_id(item, user_id),
                    instruction=None,
                    project_name=name,
                ),
                "your_answer": response,
                "right_answer": item.expected_response,
                "submitted_at": iso(at),
            }
            for answer_id, item, response, correct, at in rows
            if not correct
        ][:MAX_MISTAKES],
    }


def _answers_with_items(
    session: Session, actor: Actor, answer_ids: list[str]
) -> list[tuple[str, QualityTask, Any, bool, Any]]:
    if not answer_ids:
        return []
    rows = session.execute(
        select(
            QualityAnswer.id,
            QualityTask,
            QualityAnswer.response,
            QualityAnswer.correct,
            QualityAnswer.submitted_at,
        )
        .join(QualityTask, QualityTask.id == QualityAnswer.quality_task_id)
        .where(
            QualityAnswer.id.in_(answer_ids),
            QualityAnswer.org_id == actor.org_id,
            QualityTask.org_id == actor.org_id,
        )
        .order_by(QualityAnswer.submitted_at.desc(), QualityAnswer.id.desc())
    )
    return [(a, item, response, bool(correct), at) for a, item, response, correct, at in rows]


def _shown(code: str) -> str:
    # ``categorical_answers`` joins several picks with a unit separator.
    return ", ".join(code.split("\x1f"))


def _confusion(rows: list[tuple[str, QualityTask, Any, bool, Any]]) -> dict[str, Any]:
    """Per question of categorical gold: expected (rows) against given (columns)."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for _, item, response, _, _ in rows:
        if registry.get(item.type).aggregator != "categorical":
            continue
        expected = categorical_answers(item.expected_response)
        given = categorical_answers(response)
        for question, (want, _) in expected.items():
            if question in given:
                pairs.setdefault(question, []).append((_shown(want), _shown(given[question][0])))
    out: dict[str, Any] = {}
    for question, answered in sorted(pairs.items()):
        confusion = gold_confusion(answered)
        out[question] = {"classes": confusion.classes, "counts": confusion.counts}
    return out


def _model(session: Session, project_id: str, user_id: str) -> dict[str, Any] | None:
    parsed = worker_models.parse(worker_models.stored(session, project_id))
    if parsed is None:
        return None
    estimate = model_estimate(parsed.model, user_id)
    return {
        "source": "the project's worker model (Dawid-Skene over all workers' labels, each "
        "worker shrunk toward the pool), not gold",
        "fitted_on_you": estimate.fitted,
        "accuracy": estimate.accuracy,
        "classes": estimate.classes,
        "confusion": estimate.confusion,
        "fitted_at": parsed.fitted_at,
    }


def _evidence_for_worker(evidence: dict[str, Any]) -> dict[str, Any]:
    # Each answer by the assignment id the worker saw, not by the gold item's id: item ids are
    # shared by every worker given the item, so a list of them would help workers spot gold.
    items = [
        {k: v for k, v in item.items() if k != "item"}
        for item in evidence.get("items", [])
        if isinstance(item, dict)
    ]
    return {**evidence, "items": items}


def pause_for_worker(pause: WorkerPause) -> dict[str, Any]:
    """A pause as its worker sees it (the decider is not named to them)."""
    doc: dict[str, Any] = {
        "id": pause.id,
        "status": pause.status,
        "reason": pause.reason,
        "evidence": _evidence_for_worker(pause.evidence or {}),
        "created_at": iso(pause.created_at),
        "appeal": pause.appeal,
        "appealed_at": iso(pause.appealed_at) if pause.appealed_at else None,
        "decision": pause.decision,
        "decided_at": iso(pause.decided_at) if pause.decided_at else None,
    }
    if pause.status == "paused":
        doc["how_to_appeal"] = APPEAL_HOW.replace("{id}", pause.id)
    return doc
