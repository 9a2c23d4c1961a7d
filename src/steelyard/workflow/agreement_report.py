"""Inter-annotator agreement of a project's labels, with the quality core's statistics.

Two steps, so that no transaction is open while the statistics run: ``read_labels`` (a read
unit of work) streams the labels of the project's newest tasks, at most ``MAX_LABELS``, keeping
only what each label answers; ``compute`` (pure) calls ``steelyard.quality.agreement``.

Agreement is computed for task types whose consensus is categorical (``aggregator ==
"categorical"``: categorization). Each question is reported on its own: ``category``, and
``taxonomies.<name>`` for each taxonomy. An answer with several picks (``allow_multiple``) is
compared as a whole set: two answers agree when they pick exactly the same choices. Other task
types (boxes, spans, rankings, free text) get ``computed: false`` and the reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.quality import agreement
from steelyard.tasks.models import Task
from steelyard.tasktypes import registry
from steelyard.workflow.models import Label
from steelyard.workflow.reports import project_ref

#: Labels read per request: those of the project's newest tasks, whole tasks only. 50,000
#: labels (25,000 tasks at two each) pin the statistics down to about a hundredth, and read in
#: under a second at a million tasks (``bench/reports.py``).
MAX_LABELS = 50_000
#: Read from the database this many rows at a time (a server-side cursor on PostgreSQL).
CHUNK = 5_000
#: Ratings of one task beyond this many are left out of the statistics (and said so): the
#: reliability matrix is (ratings per task) x (tasks), and one task labeled by every worker
#: must not make it huge.
MAX_RATINGS_PER_TASK = 100
MULTIPLE_NOTE = (
    "some answers pick several choices: answers are compared as whole sets (exact match)"
)


@dataclass
class Answers:
    """One question's answers: parallel lists of task, worker and answer."""

    tasks: list[int] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    multiple: bool = False


@dataclass
class LabelSample:
    """What ``compute`` needs: each question's answers, and how the sample was taken."""

    project: str
    type: str
    #: Why agreement is not computed for this project (None: it is).
    reason: str | None
    labels: int = 0
    truncated: bool = False
    questions: dict[str, Answers] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuestionAgreement:
    #: ``category`` or ``taxonomies.<name>``.
    question: str
    labels: int
    #: Tasks with at least one answer, and with two or more (only those carry agreement).
    tasks: int
    tasks_with_two_or_more: int
    workers: int
    percent_agreement: float | None
    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    #: Only when exactly two workers answered (Cohen's kappa compares two raters).
    cohen_kappa: float | None
    #: Why a statistic is null, and how answers were compared.
    notes: list[str]


@dataclass(frozen=True, slots=True)
class ProjectAgreement:
    project: str
    type: str
    computed: bool
    #: Why nothing is computed (``computed`` false), else null.
    reason: str | None
    #: Labels the statistics are over, and whether older tasks' labels were left out.
    labels: int
    truncated: bool
    cap: int
    questions: list[QuestionAgreement]


def read_labels(session: Session, actor: Actor, name: str, *, cap: int = MAX_LABELS) -> LabelSample:
    project = project_ref(session, actor, name)
    spec = registry.get(project.type)
    if spec.aggregator != "categorical":
        reason = (
            f"Agreement is computed for categorical task types only; {spec.name} labels are "
            f"combined by '{spec.aggregator}' consensus, whose agreement (overlap, IoU, "
            "rank correlation) is not computed here."
        )
        return LabelSample(project.name, spec.name, reason)
    sample = LabelSample(project.name, spec.name, None)
    stmt = labels_statement(actor, project.id, cap + 1).execution_options(yield_per=CHUNK)
    # Each response is coded as it arrives and dropped: only its answers are kept.
    # Core on the session's connection: the ORM's row handling was a fifth of the read.
    result = session.connection().execute(stmt)
    rows = [(seq, user_id, categorical_answers(response)) for seq, user_id, response in result]
    if len(rows) > cap:
        # The last task may have been cut short: leave all of it out.
        sample.truncated = True
        last = rows[-1][0]
        while rows and rows[-1][0] == last:
            rows.pop()
    for task_seq, user_id, answered in rows:
        for question, (value, several) in answered.items():
            answers = sample.questions.setdefault(question, Answers())
            answers.tasks.append(task_seq)
            answers.workers.append(user_id)
            answers.values.append(value)
            answers.multiple = answers.multiple or several
    sample.labels = len(rows)
    return sample


def labels_statement(actor: Actor, project_id: str, limit: int) -> Any:
    """The labels of a project's newest tasks, a task's labels together.

    Driven from the project's task index backwards (``ix_tasks_project_seq``) and the labels'
    task index, in that index's order: no sort, and it stops after ``limit`` rows however large
    the project (``tests/tasks/test_report_plans.py``).
    """
    return (
        select(Label.task_seq, Label.user_id, Label.response)
        .join(Task, Task.seq == Label.task_seq)
        .where(
            Task.org_id == actor.org_id,
            Task.is_test == actor.is_test,
            Task.project_id == project_id,
            Label.org_id == actor.org_id,
            # Labels an audit or a reviewer rejected are history, not ratings of the answer.
            Label.superseded.is_(False),
        )
        .order_by(Task.seq.desc())
        .limit(limit)
    )


def categorical_answers(response: Any) -> dict[str, tuple[str, bool]]:
    """A categorical response's answer to each question, coded as text; and whether it picked
    several choices. Picks are sorted so that the same set always codes the same."""
    out: dict[str, tuple[str, bool]] = {}
    if not isinstance(response, dict):
        return out
    if "category" in response:
        out["category"] = _pick(response["category"])
    taxonomies = response.get("taxonomies")
    if isinstance(taxonomies, dict):
        for name, value in taxonomies.items():
            out[f"taxonomies.{name}"] = _pick(value)
    return out


def _pick(value: Any) -> tuple[str, bool]:
    if isinstance(value, list):
        picks = sorted(str(v) for v in value)
        return ("\x1f".join(picks), len(picks) != 1)
    return (str(value), False)


def compute(
    sample: LabelSample, *, cap: int = MAX_LABELS, max_ratings: int = MAX_RATINGS_PER_TASK
) -> ProjectAgreement:
    """The statistics of each question (pure: no session, no transaction)."""
    questions = [
        _question(name, answers, max_ratings) for name, answers in sorted(sample.questions.items())
    ]
    return ProjectAgreement(
        project=sample.project,
        type=sample.type,
        computed=sample.reason is None,
        reason=sample.reason,
        labels=sample.labels,
        truncated=sample.truncated,
        cap=cap,
        questions=questions,
    )


def _question(name: str, answers: Answers, max_ratings: int) -> QuestionAgreement:
    notes = [MULTIPLE_NOTE] if answers.multiple else []
    tasks = np.asarray(answers.tasks, dtype=np.int64)
    unit_ids, units = np.unique(tasks, return_inverse=True)
    per_unit = np.bincount(units, minlength=len(unit_ids))
    workers = sorted(set(answers.workers))
    matrix = _slots_matrix(units, answers.values, per_unit, max_ratings, notes)
    pairable = int((per_unit >= 2).sum())

    def stat(fn: Callable[[Any], float], what: str) -> float | None:
        if matrix is None:
            return None
        value = fn(matrix)
        if math.isnan(value):
            notes.append(f"{what} is undefined: every answer is the same, so chance agreement is 1")
            return None
        return value

    if matrix is None:
        notes.append("no task has two answers to this question yet: agreement needs two or more")
    percent = stat(agreement.percent_agreement, "percent agreement")
    alpha = stat(lambda m: agreement.krippendorff_alpha(m, "nominal"), "Krippendorff's alpha")
    fleiss = stat(agreement.fleiss_kappa, "Fleiss' kappa")
    cohen = _cohen(answers, workers, notes)
    return QuestionAgreement(
        question=name,
        labels=len(answers.values),
        tasks=len(unit_ids),
        tasks_with_two_or_more=pairable,
        workers=len(workers),
        percent_agreement=percent,
        krippendorff_alpha=alpha,
        fleiss_kappa=fleiss,
        cohen_kappa=cohen,
        notes=_unique(notes),
    )


def _slots_matrix(
    units: Any, values: list[str], per_unit: Any, max_ratings: int, notes: list[str]
) -> agreement.ReliabilityMatrix | None:
    """Tasks with two or more answers as a (rating slot x task) reliability matrix.

    Percent agreement, Fleiss' kappa and nominal alpha depend only on how many answers of each
    value each task got, not on who gave them, so row r holds each task's r-th answer: the
    matrix is (most answers on one task) x (tasks), where one row per worker would be
    (workers) x (tasks), mostly empty. Tasks with one answer carry no agreement (all three
    leave them out) and are dropped here.
    """
    keep = per_unit >= 2
    if not keep.any():
        return None
    value_ids, codes = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    selected = keep[units]
    units, codes = units[selected], codes.reshape(-1)[selected]
    columns = np.cumsum(keep) - 1  # old unit index -> column among the kept
    cols = columns[units]
    order = np.argsort(cols, kind="stable")
    cols, codes = cols[order], codes[order]
    starts = np.searchsorted(cols, np.arange(int(keep.sum())))
    slots = np.arange(len(cols)) - starts[cols]
    inside = slots < max_ratings
    if not inside.all():
        notes.append(
            f"answers beyond the {max_ratings}th on one task are left out of the statistics"
        )
    cols, codes, slots = cols[inside], codes[inside], slots[inside]
    matrix = np.full((int(slots.max()) + 1, int(keep.sum())), np.nan)
    matrix[slots, cols] = codes
    return agreement.ReliabilityMatrix(
        matrix, value_ids, np.arange(matrix.shape[0]), np.flatnonzero(keep)
    )


def _cohen(answers: Answers, workers: list[str], notes: list[str]) -> float | None:
    if len(workers) != 2:
        notes.append(
            f"Cohen's kappa compares two workers; {len(workers)} answered this question "
            "(see Fleiss' kappa and Krippendorff's alpha)"
        )
        return None
    by_worker: dict[str, dict[int, str]] = defaultdict(dict)
    for task, worker, value in zip(answers.tasks, answers.workers, answers.values, strict=True):
        by_worker[worker][task] = value
    a, b = (by_worker[w] for w in workers)
    both = sorted(set(a) & set(b))
    if not both:
        notes.append("Cohen's kappa: the two workers have no task in common")
        return None
    kappa = agreement.cohen_kappa([a[t] for t in both], [b[t] for t in both])
    if math.isnan(kappa):
        notes.append("Cohen's kappa is undefined: both workers always give the same answer")
        return None
    return kappa


def _unique(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))
