"""A project's workflow settings (redundancy, review, gold rate, qualification, worker quality),
read from its params.

Scale takes them as project params: ``{"pipeline": "consensus_task", "consensus_attempts": k}``
asks for k labels per task; ``{"pipeline": "standard_task"}`` or nothing for one. Steelyard adds
adaptive redundancy, ``{"pipeline": "consensus_task", "redundancy": {"min": 2, "max": 5,
"target_confidence": 0.9}}``: a task starts needing ``min`` labels and gets one more at a time,
up to ``max``, while the aggregate's confidence stays below ``target_confidence``.

Review (``review``, independent of the pipeline): ``{"mode": "none" | "sampled" | "all" |
"disagreement", "fraction": 0.2, "agreement_below": 0.8}``: a task whose labels are in waits
for a reviewer instead of completing: every task (``all``), a deterministic share of them
(``sampled``: ``fraction``), or those whose aggregate's confidence is below
``agreement_below`` (``disagreement``). See ``workflow.review``.

Gold and qualification (``read_quality``): ``{"gold_rate": 0.1}`` serves hidden evaluation
tasks as that share of a worker's items in the project; ``{"qualification": {"pass_mark": 0.8,
"tasks": 5, "max_attempts": 2}}`` has a worker answer ``tasks`` of the project's training tasks
(all of them when left out), with feedback, and reach a mean score of ``pass_mark`` before live
work; a failed attempt may be retaken while attempts are left (``max_attempts``, default 1).

Pay (``pay``: piece rate, currency, optional hourly and review rates) is checked here with the
rest and parsed by ``projects.pay_settings``; ``steelyard.pay`` reads it.

They live in the params (so the project echoes them as Scale does) and are parsed from the
params the task create path has already read and checked (``ProjectDefaults``), so a create
reads nothing more. The module is pure and sits in ``projects``, under both ``tasks`` (task
create records what a task needs) and ``workflow`` (which acts on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from steelyard.errors import ValidationError
from steelyard.projects import pay_settings
from steelyard.validation import settings_object

#: Params keys that set the redundancy (a pipeline replaces them all).
REDUNDANCY_KEYS = ("pipeline", "consensus_attempts", "redundancy")
#: Params keys for gold and qualification (``read_quality``).
QUALITY_KEYS = ("gold_rate", "qualification")
#: Params keys that are workflow settings rather than task defaults.
KEYS = (*REDUNDANCY_KEYS, *QUALITY_KEYS, "review", "worker_quality", "pay")
REVIEW_MODES = ("none", "sampled", "all", "disagreement")
PIPELINES = ("standard_task", "consensus_task")
#: The most labels one task may ask for.
MAX_LABELS = 25


@dataclass(frozen=True, slots=True)
class Redundancy:
    """How many labels a task needs: ``labels`` to start with; up to ``max_labels`` while the
    confidence is below ``target_confidence`` (``None``: fixed, ``labels == max_labels``)."""

    labels: int = 1
    max_labels: int = 1
    target_confidence: float | None = None

    @property
    def adaptive(self) -> bool:
        return self.target_confidence is not None


@dataclass(frozen=True, slots=True)
class Review:
    """Which tasks wait for a reviewer once their labels are aggregated (``mode``);
    ``fraction`` for ``sampled``, ``agreement_below`` for ``disagreement`` (else ``None``)."""

    mode: str = "none"
    fraction: float | None = None
    agreement_below: float | None = None

    @property
    def value(self) -> float | None:
        """The mode's one number, as a task records it (``tasks.review_value``)."""
        return self.fraction if self.mode == "sampled" else self.agreement_below


NO_REVIEW = Review()


@dataclass(frozen=True, slots=True)
class WorkerQuality:
    """When a worker is paused from the project for their accuracy on gold
    (``workflow.worker_quality``): once at least ``min_gold`` of their most recent ``window``
    gold answers are in, and the upper end of the 99% interval of their accuracy is below
    ``min_accuracy`` (``quality.gold.falls_short``: sure they are below it, not merely
    unlucky)."""

    min_accuracy: float
    min_gold: int = 10
    window: int = 200


@dataclass(frozen=True, slots=True)
class WorkflowSettings:
    pipeline: str
    redundancy: Redundancy
    review: Review = NO_REVIEW
    #: None: nobody is paused for quality in this project.
    worker_quality: WorkerQuality | None = None


#: One label per task.
SINGLE = Redundancy()
DEFAULT = WorkflowSettings("standard_task", SINGLE)


def _count(value: Any, field: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_LABELS:
        raise ValidationError(
            f"{field} must be a whole number from {least} to {MAX_LABELS}.", field=field
        )
    return value


def read(params: dict[str, Any], *, prefix: str = "params.") -> WorkflowSettings:
    """The settings ``params`` hold, checked; errors name the field (``params.pipeline``)."""
    if not any(key in params for key in KEYS):
        return DEFAULT
    # Gold and qualification are read apart (``read_quality``); checked here so that every
    # setting is refused at the same place.
    read_quality(params, prefix=prefix)
    pay_settings.read(params, prefix=prefix)
    review = read_review(params.get("review"), f"{prefix}review")
    settings = _redundancy(params, prefix)
    if review != NO_REVIEW:
        settings = replace(settings, review=review)
    quality = worker_quality(params, prefix=prefix)
    return settings if quality is None else replace(settings, worker_quality=quality)


#: The most gold answers a pause check weighs (the most recent): it bounds the check's work
#: inside the gold submit's write, and lets a worker who improved leave old mistakes behind.
MAX_QUALITY_WINDOW = 1000


def worker_quality(params: dict[str, Any], *, prefix: str = "params.") -> WorkerQuality | None:
    """``params.worker_quality`` = ``{"min_accuracy": 0.7, "min_gold": 10, "window": 200}``
    (``min_accuracy`` required, the rest optional), checked; ``None`` when absent."""
    field = f"{prefix}worker_quality"
    value = params.get("worker_quality")
    if value is None:
        return None
    settings_object(value, field, ("min_accuracy", "min_gold", "window"))
    threshold = value.get("min_accuracy")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.0 < float(threshold) <= 1.0
    ):
        raise ValidationError(
            f"{field}.min_accuracy must be a number in (0, 1].", field=f"{field}.min_accuracy"
        )
    min_gold = _whole(value.get("min_gold", 10), f"{field}.min_gold", 1, MAX_QUALITY_WINDOW)
    window = _whole(
        value.get("window", max(200, min_gold)), f"{field}.window", 1, MAX_QUALITY_WINDOW
    )
    if window < min_gold:
        raise ValidationError(
            f"{field}.window must be at least min_gold ({min_gold}).", field=f"{field}.window"
        )
    return WorkerQuality(float(threshold), min_gold, window)


def _whole(value: Any, field: str, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise ValidationError(
            f"{field} must be a whole number from {least} to {most}.", field=field
        )
    return value


def _redundancy(params: dict[str, Any], prefix: str) -> WorkflowSettings:
    if not any(key in params for key in REDUNDANCY_KEYS):
        return DEFAULT
    pipeline = params.get("pipeline", "standard_task")
    if pipeline not in PIPELINES:
        raise ValidationError(
            f"{prefix}pipeline must be one of {', '.join(PIPELINES)}.", field=f"{prefix}pipeline"
        )
    attempts = params.get("consensus_attempts")
    adaptive = params.get("redundancy")
    if pipeline == "standard_task":
        for key, value in (("consensus_attempts", attempts), ("redundancy", adaptive)):
            if value is not None:
                raise ValidationError(
                    f"{prefix}{key} needs pipeline consensus_task.", field=f"{prefix}{key}"
                )
        return DEFAULT
    if adaptive is not None:
        if attempts is not None:
            raise ValidationError(
                f"Give {prefix}consensus_attempts (fixed) or {prefix}redundancy (adaptive), "
                "not both.",
                field=f"{prefix}redundancy",
            )
        return WorkflowSettings(pipeline, _adaptive(adaptive, f"{prefix}redundancy"))
    if attempts is None:
        raise ValidationError(
            f"{prefix}consensus_attempts is required with pipeline consensus_task.",
            field=f"{prefix}consensus_attempts",
        )
    k = _count(attempts, f"{prefix}consensus_attempts", least=1)
    return WorkflowSettings(pipeline, Redundancy(k, k, None))


def _adaptive(value: Any, field: str) -> Redundancy:
    settings_object(value, field, ("min", "max", "target_confidence"))
    low = _count(value.get("min"), f"{field}.min", least=1)
    high = _count(value.get("max"), f"{field}.max", least=1)
    if high < low:
        raise ValidationError(f"{field}.max must be at least min ({low}).", field=f"{field}.max")
    target = value.get("target_confidence")
    if (
        isinstance(target, bool)
        or not isinstance(target, int | float)
        or not 0.0 < float(target) <= 1.0
    ):
        raise ValidationError(
            f"{field}.target_confidence must be a number in (0, 1].",
            field=f"{field}.target_confidence",
        )
    return Redundancy(low, high, float(target))


def _share(value: Any, field: str, *, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise ValidationError(f"{field} must be a number in (0, 1].", field=field)
    return float(value)


def read_review(value: Any, field: str = "params.review") -> Review:
    """``params.review`` checked (``None``: no review); errors name the field."""
    if value is None:
        return NO_REVIEW
    settings_object(value, field, ("mode", "fraction", "agreement_below"))
    mode = value.get("mode")
    if mode not in REVIEW_MODES:
        raise ValidationError(
            f"{field}.mode must be one of {', '.join(REVIEW_MODES)}.", field=f"{field}.mode"
        )
    # A number the mode does not read is refused rather than silently ignored.
    wants = {"sampled": "fraction", "disagreement": "agreement_below"}.get(mode)
    for key in ("fraction", "agreement_below"):
        if key != wants and value.get(key) is not None:
            raise ValidationError(
                f"{field}.{key} does not apply to mode {mode}.", field=f"{field}.{key}"
            )
    if mode == "sampled":
        return Review(
            mode, fraction=_share(value.get("fraction"), f"{field}.fraction", default=0.2)
        )
    if mode == "disagreement":
        below = _share(value.get("agreement_below"), f"{field}.agreement_below", default=0.8)
        return Review(mode, agreement_below=below)
    return Review(mode)


def task_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """A project's params without its workflow settings: what its tasks take as defaults."""
    if not any(key in params for key in KEYS):
        return params
    return {k: v for k, v in params.items() if k not in KEYS}


def superseded(current: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """``current`` params without the workflow settings that ``sent`` (a ``setParams``) replaces:
    a pipeline replaces the redundancy settings (``standard_task`` after ``consensus_task`` drops
    ``consensus_attempts`` rather than contradicting it); fixed and adaptive redundancy replace
    each other. ``review`` and ``worker_quality`` are replaced whole by the same key sent, and
    kept otherwise."""
    if "pipeline" in sent:
        return {k: v for k, v in current.items() if k not in REDUNDANCY_KEYS}
    drop = {"consensus_attempts": "redundancy", "redundancy": "consensus_attempts"}
    gone = {drop[key] for key in drop if key in sent}
    return {k: v for k, v in current.items() if k not in gone} if gone else current


# --- gold and qualification ----------------------------------------------------------------

#: The largest share of a worker's items that may be gold: above it, gold is most of the work.
MAX_GOLD_RATE = 0.5
#: The most training tasks a qualification may ask for, and attempts it may allow.
MAX_QUALIFICATION_TASKS = 1000
MAX_ATTEMPTS = 100


@dataclass(frozen=True, slots=True)
class Qualification:
    """Training a worker passes before live work: a mean score of ``pass_mark`` over ``tasks``
    of the project's training tasks (``None``: all of them), in at most ``max_attempts``."""

    pass_mark: float
    tasks: int | None = None
    max_attempts: int = 1

    def to_doc(self) -> dict[str, Any]:
        return {"pass_mark": self.pass_mark, "tasks": self.tasks, "max_attempts": self.max_attempts}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Qualification:
        return cls(float(doc["pass_mark"]), doc.get("tasks"), int(doc.get("max_attempts", 1)))


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """Gold and qualification: ``gold_rate`` 0 serves no gold; ``qualification`` ``None`` lets
    every eligible worker straight to live work."""

    gold_rate: float = 0.0
    qualification: Qualification | None = None

    @property
    def active(self) -> bool:
        return self.gold_rate > 0 or self.qualification is not None

    def to_doc(self) -> dict[str, Any]:
        """What ``projects.quality_settings`` stores (read on ``next`` without the params)."""
        return {
            "gold_rate": self.gold_rate,
            "qualification": self.qualification.to_doc() if self.qualification else None,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> QualitySettings:
        if not doc:
            return NO_QUALITY
        q = doc.get("qualification")
        return cls(float(doc.get("gold_rate") or 0.0), Qualification.from_doc(q) if q else None)


NO_QUALITY = QualitySettings()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def read_quality(params: dict[str, Any], *, prefix: str = "params.") -> QualitySettings:
    """The gold rate and qualification ``params`` hold, checked; errors name the field
    (``params.gold_rate``, ``params.qualification.pass_mark``)."""
    if not any(key in params for key in QUALITY_KEYS):
        return NO_QUALITY
    rate = 0.0
    if params.get("gold_rate") is not None:
        value = _number(params["gold_rate"])
        if value is None or not 0.0 <= value <= MAX_GOLD_RATE:
            raise ValidationError(
                f"{prefix}gold_rate must be a number from 0 to {MAX_GOLD_RATE}.",
                field=f"{prefix}gold_rate",
            )
        rate = value
    raw = params.get("qualification")
    qualification = None if raw is None else _qualification(raw, f"{prefix}qualification")
    return QualitySettings(rate, qualification)


def _qualification(value: Any, field: str) -> Qualification:
    settings_object(value, field, ("pass_mark", "tasks", "max_attempts"))
    mark = _number(value.get("pass_mark"))
    if mark is None or not 0.0 < mark <= 1.0:
        raise ValidationError(
            f"{field}.pass_mark must be a number in (0, 1].", field=f"{field}.pass_mark"
        )
    tasks = value.get("tasks")
    if tasks is not None and (
        isinstance(tasks, bool)
        or not isinstance(tasks, int)
        or not 1 <= tasks <= MAX_QUALIFICATION_TASKS
    ):
        raise ValidationError(
            f"{field}.tasks must be a whole number from 1 to {MAX_QUALIFICATION_TASKS}.",
            field=f"{field}.tasks",
        )
    attempts = value.get("max_attempts", 1)
    if (
        isinstance(attempts, bool)
        or not isinstance(attempts, int)
        or not 1 <= attempts <= MAX_ATTEMPTS
    ):
        raise ValidationError(
            f"{field}.max_attempts must be a whole number from 1 to {MAX_ATTEMPTS}.",
            field=f"{field}.max_attempts",
        )
    return Qualification(mark, tasks, attempts)


def quality_doc(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What a project stores in ``quality_settings`` for its params ``history``: ``None`` for a
    project that never had gold or qualification, else the settings now in force (all off when
    the keys went away, so that ``next`` still looks for a quality lease a worker may hold)."""
    if not any(key in entry for entry in history for key in QUALITY_KEYS):
        return None
    try:
        settings = read_quality(history[-1])
    except ValidationError:
        settings = NO_QUALITY
    return settings.to_doc()
