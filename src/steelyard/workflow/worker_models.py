"""Per-project worker models for categorical tasks: fitted in the background, read at completion.

Storage: the project's ``settings`` JSON (unused by anything else so far), under
``worker_model``: ``{"model": quality.project_model.dumps(...), "n_labels": ..., "fitted_at":
...}``. No migration; one small document per project (a few KB for dozens of workers).

Refresh: ``JobRunner.refresh_worker_models`` asks every ``CHECK_SECONDS`` (read transaction)
which projects are ``due`` (at least ``MIN_LABELS`` categorical labels, and either no model,
``REFRESH_LABELS`` new labels since the fit, or any new label and ``REFRESH_SECONDS`` since
it) and enqueues one ``FIT_JOB`` per such project (none while one is queued or running). The
job (``handle_fit``) reads the labels in a read transaction, fits outside any transaction, and
writes the document in a short write. Completion never fits: it reads the stored document
(``stored``) before its write and parses it outside (``parse``, cached per fit).

Use at completion (``categorical_outcome``): the task's answers under the project's model
(``quality.adaptive.decide``, with its gold-fitted calibrator when the stored model has one), so
a reliable worker's label counts for more than an unreliable one's and ``confidence`` says so.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.context import GiveUp, JobContext
from steelyard.jobs.models import Job
from steelyard.projects.models import Project
from steelyard.quality import project_model
from steelyard.quality.adaptive import WorkerModel, decide
from steelyard.quality.calibration import Calibrator
from steelyard.tasks.models import QualityTask, Task
from steelyard.tasktypes import registry
from steelyard.timefmt import iso
from steelyard.workflow.aggregation import Labels, Outcome
from steelyard.workflow.models import Label, QualityAnswer

log = logging.getLogger("steelyard.workflow")

FIT_JOB = "worker_model_fit"
#: Key in ``Project.settings``.
SETTINGS_KEY = "worker_model"
#: Fewer labels than this teach a per-worker model nothing the default does not know.
MIN_LABELS = 10
#: Refit after this many new labels ...
REFRESH_LABELS = 50
#: ... or after this long when at least one new label arrived.
REFRESH_SECONDS = 600.0
#: How often the runner asks which projects are due.
CHECK_SECONDS = 30.0


@dataclass(frozen=True)
class ProjectModel:
    model: WorkerModel
    calibrator: Calibrator | None
    n_labels: int
    fitted_at: str


def categorical_types() -> list[str]:
    return [n for n in registry.names() if registry.get(n).aggregator == "categorical"]


# --- reading at completion -------------------------------------------------------------------


def stored(session: Session, project_id: str | None) -> dict[str, Any] | None:
    """The project's stored model document, or ``None`` (one indexed row read)."""
    if project_id is None:
        return None
    settings = session.scalar(select(Project.settings).where(Project.id == project_id))
    doc = (settings or {}).get(SETTINGS_KEY)
    return doc if isinstance(doc, dict) else None


_cache: OrderedDict[tuple[Any, ...], ProjectModel] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 64


def parse(doc: dict[str, Any] | None) -> ProjectModel | None:
    """The stored document as a model; cached per fit, so a busy project parses it once per
    refresh. An unreadable document is ignored (completion falls back to the default)."""
    if doc is None:
        return None
    key = (doc.get("project_id"), doc.get("fitted_at"), doc.get("n_labels"))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    try:
        model, calibrator = project_model.loads(doc["model"])
    except (KeyError, TypeError, ValueError):
        log.warning("unreadable worker model for project %s; using the default", key[0])
        return None
    parsed = ProjectModel(model, calibrator, int(doc.get("n_labels", 0)), str(key[1]))
    with _cache_lock:
        _cache[key] = parsed
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return parsed


def categorical_outcome(
    pm: ProjectModel,
    labels: Labels,
    *,
    target_confidence: float | None,
    max_labels: int,
) -> Outcome | None:
    """The task's outcome under the project's model, or ``None`` when the model cannot read
    these labels (a response with more than a category, several categories, or a category the
    fit never saw): the caller then uses the default vote.

    ``more`` is ``decide``'s verdict when the task is adaptive; the confidence is the calibrated
    one when the project has a calibrator (what the stop used), else the model's posterior."""
    answers: list[tuple[str, Any]] = []
    known = set(pm.model.classes.tolist())
    for worker, response in labels:
        category = response.get("category") if set(response) == {"category"} else None
        if not isinstance(category, str) or category not in known:
            return None
        answers.append((worker, category))
    if not answers:
        return None
    d = decide(
        answers,
        worker_model=pm.model,
        min_labels=1,
        max_labels=max(max_labels, len(answers)),
        target_confidence=target_confidence if target_confidence is not None else 1.0,
        calibrator=pm.calibrator,
    )
    chosen = next((r for (_, a), (_, r) in zip(answers, labels, strict=True) if a == d.label), None)
    response = dict(chosen) if chosen is not None else {"category": d.label}
    more = None if target_confidence is None else d.reason == "need_more"
    return Outcome(response, min(1.0, max(0.0, d.confidence)), len(answers), more=more)


# --- refreshing in the background ------------------------------------------------------------


def _label_counts(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(Task.org_id, Task.project_id, func.count(Label.id))
        .join(Label, Label.task_seq == Task.seq)
        .where(
            Task.project_id.is_not(None),
            Task.type.in_(categorical_types()),
            Label.superseded.is_(False),
        )
        .group_by(Task.org_id, Task.project_id)
    ).all()
    return [(org, project, int(n)) for org, project, n in rows if project is not None]


def due(session: Session, now: datetime) -> list[tuple[str, str]]:
    """(org, project) pairs whose model should be (re)fitted now."""
    counts = [c for c in _label_counts(session) if c[2] >= MIN_LABELS]
    if not counts:
        return []
    settings: dict[str, dict[str, Any] | None] = dict(
        session.execute(
            select(Project.id, Project.settings).where(Project.id.in_([p for _, p, _ in counts]))
        ).all()
    )
    out = []
    for org, project, n in counts:
        doc = (settings.get(project) or {}).get(SETTINGS_KEY)
        if not isinstance(doc, dict):
            out.append((org, project))
            continue
        fitted = int(doc.get("n_labels", 0))
        since = now - datetime.fromisoformat(str(doc["fitted_at"]).replace("Z", "+00:00"))
        if n - fitted >= REFRESH_LABELS or (
            n > fitted and since >= timedelta(seconds=REFRESH_SECONDS)
        ):
            out.append((org, project))
    return out


def enqueue_due(session: Session, projects: Sequence[tuple[str, str]], now: datetime) -> int:
    """One ``FIT_JOB`` per project in ``projects`` that has none queued or running."""
    if not projects:
        return 0
    open_jobs = session.scalars(
        select(Job.payload).where(Job.kind == FIT_JOB, Job.status.in_(("queued", "running")))
    ).all()
    busy = {p.get("project_id") for p in open_jobs if isinstance(p, dict)}
    n = 0
    for org, project in projects:
        if project not in busy:
            outbox.enqueue(
                session, FIT_JOB, {"project_id": project}, org_id=org, now=now, max_attempts=3
            )
            n += 1
    return n


def _table(session: Session, org_id: str, project_id: str) -> tuple[dict[str, list[Any]], int]:
    rows = session.execute(
        select(Label.task_seq, Label.user_id, Label.response)
        .join(Task, Task.seq == Label.task_seq)
        .where(
            Task.org_id == org_id,
            Task.project_id == project_id,
            Task.type.in_(categorical_types()),
            # Rejected by an audit or a review: never aggregated again, so not fitted either
            # (beside the fresh round they would make the task look like a split vote).
            Label.superseded.is_(False),
        )
        .order_by(Label.task_seq, Label.created_at, Label.id)  # a task's labels in order
    ).all()
    table: dict[str, list[Any]] = {"task": [], "worker": [], "label": []}
    for seq, user, response in rows:
        category = response.get("category") if isinstance(response, dict) else None
        if isinstance(category, str):  # several categories: not a one-of-K label
            table["task"].append(seq)
            table["worker"].append(user)
            table["label"].append(category)
    return table, len(rows)


def _served_gold(session: Session, org_id: str, project_id: str) -> list[tuple[int, str, str, str]]:
    """The project's evaluation answers (hidden gold, ``quality_answers``) as rows ``(item key,
    worker, category, expected category)``, an item's answers in the order given. An item's key
    is a negative number, so it never meets a live task's seq in the table; only one-category
    answers to one-category expectations count."""
    rows = session.execute(
        select(
            QualityAnswer.quality_task_id,
            QualityAnswer.user_id,
            QualityAnswer.response,
            QualityTask.expected_response,
        )
        .join(QualityTask, QualityTask.id == QualityAnswer.quality_task_id)
        .where(
            QualityAnswer.org_id == org_id,
            QualityAnswer.project_id == project_id,
            QualityAnswer.kind == "evaluation",
            QualityAnswer.status == "submitted",
        )
        .order_by(QualityAnswer.quality_task_id, QualityAnswer.submitted_at, QualityAnswer.id)
    ).all()
    keys: dict[str, int] = {}
    out = []
    for item, user, response, expected in rows:
        category = response.get("category") if isinstance(response, dict) else None
        right = expected.get("category") if isinstance(expected, dict) else None
        if isinstance(category, str) and isinstance(right, str):
            key = keys.setdefault(item, -1 - len(keys))
            out.append((key, user, category, right))
    return out


def fit_project(
    db: Database,
    org_id: str,
    project_id: str,
    now: datetime,
    *,
    gold: Mapping[int, str] | None = None,
) -> bool:
    """Fit ``project_id``'s model from its labels and store it; ``False`` when there was
    nothing to fit (the stored count still moves, so the project is not due again at once).

    ``gold``: task seq -> the right category, for live tasks of the project whose answer is
    known. The project's hidden gold as served (``_served_gold``: its evaluation tasks' submitted
    answers, with their expected answers) joins them: its answers are labels like any other for
    the fit, and with enough gold items answered the stored model gets a calibrator
    (``project_model.calibrate_on_gold``)."""
    with db.unit_of_work(write=False) as session:
        table, n_labels = _table(session, org_id, project_id)
        served = _served_gold(session, org_id, project_id)
    truth: dict[Any, str] = dict(gold or {})
    for key, worker, category, expected in served:
        table["task"].append(key)
        table["worker"].append(worker)
        table["label"].append(category)
        truth[key] = expected
    model = project_model.fit_worker_model(table)
    calibrator = None
    if model is not None and truth:
        calibrator = project_model.calibrate_on_gold(model, table, truth)
    with db.unit_of_work() as session:
        write(session, org_id, project_id, model, n_labels, now, calibrator)
    return model is not None


def write(
    session: Session,
    org_id: str,
    project_id: str,
    model: WorkerModel | None,
    n_labels: int,
    now: datetime,
    calibrator: Calibrator | None = None,
) -> None:
    project = session.scalar(
        select(Project).where(Project.id == project_id, Project.org_id == org_id).with_for_update()
    )
    if project is None:
        return
    settings = dict(project.settings or {})
    if model is None:
        previous = settings.get(SETTINGS_KEY)
        if isinstance(previous, dict):  # keep the last good fit; only count the labels seen
            settings[SETTINGS_KEY] = {**previous, "n_labels": n_labels, "fitted_at": iso(now)}
        else:
            return
    else:
        settings[SETTINGS_KEY] = {
            "project_id": project_id,
            "model": project_model.dumps(model, calibrator),
            "n_labels": n_labels,
            "fitted_at": iso(now),
        }
    project.settings = settings


def handle_fit(ctx: JobContext) -> None:
    project_id = ctx.job.payload.get("project_id")
    if not isinstance(project_id, str) or ctx.job.org_id is None:
        raise GiveUp("a worker model job names its project and organization")
    fit_project(ctx.db, ctx.job.org_id, project_id, ctx.clock.now())
