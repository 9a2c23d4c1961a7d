"""A project's workflow settings (redundancy), read from its params.

Scale takes them as project params: ``{"pipeline": "consensus_task", "consensus_attempts": k}``
asks for k labels per task; ``{"pipeline": "standard_task"}`` or nothing for one. Steelyard adds
adaptive redundancy, ``{"pipeline": "consensus_task", "redundancy": {"min": 2, "max": 5,
"target_confidence": 0.9}}``: a task starts needing ``min`` labels and gets one more at a time,
up to ``max``, while the aggregate's confidence stays below ``target_confidence``.

They live in the params (so the project echoes them as Scale does) and are parsed from the
params the task create path has already read and checked (``ProjectDefaults``), so a create
reads nothing more. The module is pure and sits in ``projects``, under both ``tasks`` (task
create records what a task needs) and ``workflow`` (which acts on it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from steelyard.errors import ValidationError

#: Params keys that are workflow settings rather than task defaults.
KEYS = ("pipeline", "consensus_attempts", "redundancy", "worker_quality")
#: The keys a ``pipeline`` sent in a ``setParams`` replaces.
REDUNDANCY_KEYS = ("pipeline", "consensus_attempts", "redundancy")
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
    settings = _pipeline(params, prefix)
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
    if not isinstance(value, dict):
        raise ValidationError(
            f"{field} must be an object {{min_accuracy, min_gold, window}}.", field=field
        )
    unknown = sorted(set(value) - {"min_accuracy", "min_gold", "window"})
    if unknown:
        name = f"{field}.{unknown[0]}"
        raise ValidationError(f"{name} is not a setting.", field=name)
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


def _pipeline(params: dict[str, Any], prefix: str) -> WorkflowSettings:
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
    if not isinstance(value, dict):
        raise ValidationError(
            f"{field} must be an object {{min, max, target_confidence}}.", field=field
        )
    unknown = sorted(set(value) - {"min", "max", "target_confidence"})
    if unknown:
        name = f"{field}.{unknown[0]}"
        raise ValidationError(f"{name} is not a setting.", field=name)
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


def task_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """A project's params without its workflow settings: what its tasks take as defaults."""
    if not any(key in params for key in KEYS):
        return params
    return {k: v for k, v in params.items() if k not in KEYS}


def superseded(current: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """``current`` params without the workflow settings that ``sent`` (a ``setParams``) replaces:
    a pipeline replaces the redundancy settings (``standard_task`` after ``consensus_task``
    drops ``consensus_attempts`` rather than contradicting it); fixed and adaptive redundancy
    replace each other. ``worker_quality`` stays unless sent (a key sent replaces its whole)."""
    if "pipeline" in sent:
        return {k: v for k, v in current.items() if k not in REDUNDANCY_KEYS}
    drop = {"consensus_attempts": "redundancy", "redundancy": "consensus_attempts"}
    gone = {drop[key] for key in drop if key in sent}
    return {k: v for k, v in current.items() if k not in gone} if gone else current
