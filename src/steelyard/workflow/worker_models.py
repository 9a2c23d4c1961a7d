"""Per-project worker models for categorical tasks: fitted in the background, read at completion.

Storage: the project's ``settings`` JSON under ``worker_model``: ``{"model":
quality.project_model.dumps(...), "n_labels": ..., "n_gold": ..., "fitted_at": ...,
"watermark": ...}`` (live labels and gold answers the fit read)
(``model`` absent while there is nothing to fit). One small document per project (a few KB for
dozens of workers).

Gold: the project's submitted evaluation answers (served through ``next``/``submit``, stored in
``quality_answers``) enter the fit as extra items whose truth is clamped, so confusion matrices
learn from gold; with ``project_model.MIN_GOLD_ITEMS`` items answered at least twice they also
fit the calibrator (``project_model.calibrate_on_answers``: each item replayed as a live task
of the project's size would have been).

Refresh: ``JobRunner.refresh_worker_models`` asks every ``CHECK_SECONDS`` (read transaction)
which projects are ``due``. That check never counts a project's labels: it reads the labels and
gold answers of the last ``LOOKBACK_SECONDS`` through their time indexes, keeps those newer than
each project's watermark (the newest label or answer its last fit read), and adds the count the
fit stored. A project is due when something is new and: it has no document yet, or it just
reached ``MIN_LABELS``, or ``REFRESH_LABELS`` are new, or ``REFRESH_SECONDS`` passed since the
fit. It enqueues one ``FIT_JOB`` per such project (none while one is queued or running). The
job (``handle_fit``) reads the labels and gold in a read transaction, fits outside any
transaction, and writes the document in a short write. Completion never fits: it reads the
stored document (``stored``) before its write and parses it outside (``parse``, cached per fit).

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

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from steelyard.db.base import UTCDateTime
from steelyard.db.engine import Database
from steelyard.errors import SteelyardError
from steelyard.jobs import outbox
from steelyard.jobs.context import GiveUp, JobContext
from steelyard.jobs.models import Job
from steelyard.projects import workflow_settings
from steelyard.projects.models import Project, current_params
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
    if doc is None or "model" not in doc:  # nothing fitted yet (only a watermark)
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

#: How far back ``due`` looks for labels. Every label is inside the window for at least
#: ``REFRESH_SECONDS`` plus a few checks, so the check that finds its project due (by count,
#: or ``REFRESH_SECONDS`` after the fit whose watermark it follows) still counts it; the fit
#: then reads every label anyway. Only a runner stopped for longer than this misses one, and
#: then only until the project's next label. The scan is the labels of this window (indexed),
#: however large the tables.
LOOKBACK_SECONDS = REFRESH_SECONDS + 4 * CHECK_SECONDS


def _watermarks(session: Session) -> dict[str, tuple[datetime, int, bool]]:
    """project -> (watermark, labels and gold answers at the fit, has a model) for projects
    with a document."""
    rows = session.execute(
        select(Project.id, Project.settings).where(Project.type.in_(categorical_types()))
    ).all()
    out = {}
    for project, settings in rows:
        doc = (settings or {}).get(SETTINGS_KEY)
        if isinstance(doc, dict) and "fitted_at" in doc:
            mark = _when(str(doc.get("watermark") or doc["fitted_at"]))
            seen = int(doc.get("n_labels", 0)) + int(doc.get("n_gold", 0))
            out[project] = (mark, seen, "model" in doc)
    return out


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def recent_statements(since: datetime, marks: Mapping[str, datetime]) -> tuple[Any, Any]:
    """(org, project, count) of categorical labels and of gold answers newer than the
    project's watermark in ``marks`` (``since`` for a project without one, and never older
    than ``since``): range scans of the ``created_at`` / ``submitted_at`` indexes from
    ``since``, each row joined to its task by key."""
    # The window first, then each of its labels' task by key: a materialized CTE keeps a
    # planner that misjudges the window from starting at tasks (SQLite with ANALYZE statistics
    # of 10^6 tasks flattened a plain CTE and scanned them: 1.6 s; PostgreSQL on small tables).
    recent = (
        select(Label.task_seq, Label.created_at)
        .where(Label.created_at > since)
        .cte("recent_labels")
        .prefix_with("MATERIALIZED")
    )
    labels = (
        select(Task.org_id, Task.project_id, func.count())
        .select_from(recent)
        .join(Task, Task.seq == recent.c.task_seq)
        .where(
            recent.c.created_at > _per_project(Task.project_id, marks, since),
            Task.type.in_(categorical_types()),
        )
        .group_by(Task.org_id, Task.project_id)
    )
    answers = (
        select(
            QualityAnswer.org_id,
            QualityAnswer.project_id,
            QualityAnswer.submitted_at,
            QualityAnswer.kind,
            QualityAnswer.status,
        )
        .where(QualityAnswer.submitted_at > since)
        .cte("recent_answers")
        .prefix_with("MATERIALIZED")
    )
    gold = (
        select(answers.c.org_id, answers.c.project_id, func.count())
        .where(
            answers.c.submitted_at > _per_project(answers.c.project_id, marks, since),
            answers.c.kind == "evaluation",
            answers.c.status == "submitted",
        )
        .group_by(answers.c.org_id, answers.c.project_id)
    )
    return labels, gold


def _new_since(
    session: Session, since: datetime, marks: Mapping[str, datetime]
) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for stmt in recent_statements(since, marks):
        for org, project, n in session.execute(stmt).all():
            if project is not None:
                out[(org, project)] = out.get((org, project), 0) + int(n)
    return out


def _per_project(column: Any, marks: Mapping[str, datetime], since: datetime) -> Any:
    """The watermark of the row's project as an SQL expression (``since`` for the others)."""
    later = {p: m for p, m in marks.items() if m > since}
    if not later:
        return literal(since, UTCDateTime())
    return case(
        *((column == p, literal(m, UTCDateTime())) for p, m in sorted(later.items())),
        else_=literal(since, UTCDateTime()),
    )


def due(session: Session, now: datetime) -> list[tuple[str, str]]:
    """(org, project) pairs whose model should be (re)fitted now.

    Cheap at any size: only labels and gold answers newer than the oldest watermark (at most
    ``LOOKBACK_SECONDS`` back) are read, through their time indexes; the per-project totals
    come from the stored documents. A project is due when something arrived since its fit and
    it has no document yet (the fit then records a watermark, even with nothing to fit), or
    it has just reached ``MIN_LABELS``, or ``REFRESH_LABELS`` arrived, or ``REFRESH_SECONDS``
    passed."""
    marks = _watermarks(session)
    since = now - timedelta(seconds=LOOKBACK_SECONDS)
    fresh = _new_since(session, since, {p: m for p, (m, _, _) in marks.items()})
    out = []
    for (org, project), new in sorted(fresh.items()):
        if new <= 0:
            continue
        if project not in marks:
            out.append((org, project))
            continue
        mark, fitted, has_model = marks[project]
        total = fitted + new
        if total < MIN_LABELS:
            continue
        if (
            (not has_model and fitted < MIN_LABELS)
            or new >= REFRESH_LABELS
            or now - mark >= timedelta(seconds=REFRESH_SECONDS)
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


@dataclass(frozen=True)
class _Gold:
    """Served evaluation items of a project, coded as negative task keys (live tasks are
    positive ``seq``s): their answers, their truth, and the newest answer's time."""

    table: dict[str, list[Any]]
    truth: dict[int, str]
    newest: datetime | None


def _table(
    session: Session, org_id: str, project_id: str
) -> tuple[dict[str, list[Any]], int, datetime | None]:
    rows = session.execute(
        select(Label.task_seq, Label.user_id, Label.response, Label.created_at)
        .join(Task, Task.seq == Label.task_seq)
        .where(
            Task.org_id == org_id,
            Task.project_id == project_id,
            Task.type.in_(categorical_types()),
            # Rejected by an audit or a review: never aggregated again, so not fitted either.
            Label.superseded.is_(False),
        )
        .order_by(Label.task_seq, Label.created_at, Label.id)  # a task's labels in order
    ).all()
    table: dict[str, list[Any]] = {"task": [], "worker": [], "label": []}
    newest: datetime | None = None
    for seq, user, response, created in rows:
        newest = created if newest is None or created > newest else newest
        category = response.get("category") if isinstance(response, dict) else None
        if isinstance(category, str):  # several categories: not a one-of-K label
            table["task"].append(seq)
            table["worker"].append(user)
            table["label"].append(category)
    return table, len(rows), newest


def _category(response: Any) -> str | None:
    """The one category of a categorical response, else ``None``."""
    if isinstance(response, dict):
        category = response.get("category")
        if isinstance(category, str):
            return category
    return None


def _gold(session: Session, org_id: str, project_id: str) -> _Gold:
    rows = session.execute(
        select(
            QualityAnswer.quality_task_id,
            QualityAnswer.user_id,
            QualityAnswer.response,
            QualityAnswer.submitted_at,
            QualityTask.expected_response,
        )
        .join(QualityTask, QualityTask.id == QualityAnswer.quality_task_id)
        .where(
            QualityAnswer.org_id == org_id,
            QualityAnswer.project_id == project_id,
            QualityAnswer.kind == "evaluation",
            QualityAnswer.status == "submitted",
            QualityTask.type.in_(categorical_types()),
        )
        .order_by(QualityAnswer.quality_task_id, QualityAnswer.submitted_at, QualityAnswer.id)
    ).all()
    table: dict[str, list[Any]] = {"task": [], "worker": [], "label": []}
    codes: dict[str, int] = {}
    truth: dict[int, str] = {}
    newest: datetime | None = None
    for item, user, response, submitted, expected in rows:
        if submitted is not None and (newest is None or submitted > newest):
            newest = submitted
        answer, right = _category(response), _category(expected)
        if answer is None or right is None:
            continue
        code = codes.setdefault(item, -(len(codes) + 1))
        truth[code] = right
        table["task"].append(code)
        table["worker"].append(user)
        table["label"].append(answer)
    return _Gold(table, truth, newest)


def _live_size(session: Session, org_id: str, project_id: str) -> tuple[int, bool]:
    """Labels a live task of the project gets at most, and whether it may stop early."""
    history = session.scalar(
        select(Project.param_history).where(Project.id == project_id, Project.org_id == org_id)
    )
    try:
        redundancy = workflow_settings.read(current_params(history)).redundancy
    except SteelyardError:  # settings stored before a rule tightened: the default
        redundancy = workflow_settings.SINGLE
    return redundancy.max_labels, redundancy.adaptive


def fit_project(
    db: Database,
    org_id: str,
    project_id: str,
    now: datetime,
    *,
    gold: Mapping[int, str] | None = None,
) -> bool:
    """Fit ``project_id``'s model from its labels and its served gold, and store it; ``False``
    when there was nothing to fit (the watermark still moves, so the project is not due again
    at once).

    Served gold (submitted answers to the project's evaluation items) enters the fit as extra
    items with their truth clamped, and, with enough of it (``project_model.MIN_GOLD_ITEMS``),
    fits the calibrator on replays of the items cut to a live task's size, each scored by a
    model fitted without it (``project_model.calibrate_cross_fitted``: two more fits). With
    served gold below that minimum the stored calibrator is ``project_model.DEFAULT_PRIOR``.

    ``gold``: task seq -> the right category, for live tasks whose answer is known (the older
    way to calibrate, ``project_model.calibrate_on_gold``; used when served gold gives no
    calibrator)."""
    with db.unit_of_work(write=False) as session:
        table, n_labels, newest = _table(session, org_id, project_id)
        served = _gold(session, org_id, project_id)
        size, adaptive = _live_size(session, org_id, project_id)
    combined = {k: [*table[k], *served.table[k]] for k in table}
    model = project_model.fit_worker_model(combined, gold={**(gold or {}), **served.truth})
    calibrator = None
    if model is not None:
        live_gold = dict(gold or {})
        calibrator = project_model.calibrate_cross_fitted(
            table,
            served.table,
            served.truth,
            size=max(size, 1),
            stopping=adaptive,
            prior=project_model.DEFAULT_PRIOR,
            fit=lambda t, g: project_model.fit_worker_model(t, gold={**live_gold, **g}),
        )
        if calibrator is None and gold:
            calibrator = project_model.calibrate_on_gold(model, table, gold)
        if calibrator is None and served.truth:
            # Gold is served but too little of it to fit: the prior map (cautious, pooled from
            # public crowds), not the raw posterior that the replay shows over-promising.
            calibrator = project_model.DEFAULT_PRIOR
    stamps = [t for t in (newest, served.newest) if t is not None]
    mark = max(stamps) if stamps else now
    with db.unit_of_work() as session:
        write(
            session,
            org_id,
            project_id,
            model,
            n_labels,
            now,
            calibrator,
            watermark=mark,
            n_gold=len(served.table["task"]),
        )
    return model is not None


def write(
    session: Session,
    org_id: str,
    project_id: str,
    model: WorkerModel | None,
    n_labels: int,
    now: datetime,
    calibrator: Calibrator | None = None,
    *,
    watermark: datetime | None = None,
    n_gold: int = 0,
) -> None:
    """Store the fit. ``n_labels``: the live labels it read; ``n_gold``: the gold answers.
    ``watermark``: the newest label or gold answer it read (``now`` if none given), from which
    ``due`` counts what is new; with no model the previous document is kept and only its
    counts move, or a model-less one records them."""
    mark = iso(watermark or now)
    counts = {"n_labels": n_labels, "n_gold": n_gold, "fitted_at": iso(now), "watermark": mark}
    project = session.scalar(
        select(Project).where(Project.id == project_id, Project.org_id == org_id).with_for_update()
    )
    if project is None:
        return
    settings = dict(project.settings or {})
    if model is None:
        previous = settings.get(SETTINGS_KEY)
        if isinstance(previous, dict):  # keep the last good fit; only count the labels seen
            settings[SETTINGS_KEY] = {**previous, **counts}
        else:  # nothing to fit yet: remember what was seen, so ``due`` counts from here
            settings[SETTINGS_KEY] = {"project_id": project_id, **counts}
    else:
        settings[SETTINGS_KEY] = {
            "project_id": project_id,
            "model": project_model.dumps(model, calibrator),
            **counts,
        }
    project.settings = settings


def handle_fit(ctx: JobContext) -> None:
    project_id = ctx.job.payload.get("project_id")
    if not isinstance(project_id, str) or ctx.job.org_id is None:
        raise GiveUp("a worker model job names its project and organization")
    fit_project(ctx.db, ctx.job.org_id, project_id, ctx.clock.now())
