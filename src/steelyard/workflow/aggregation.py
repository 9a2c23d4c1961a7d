"""A task's labels → its response and a confidence in [0, 1], by the consensus its type declares
(``TaskTypeSpec.aggregator``), with the functions of ``steelyard.quality``.

* ``categorical`` and ``ranking`` (categorization, comparison): a vote on the answer
  (``category``, or ``choice``; the whole response where it has more to it) under the quality
  core's one-coin model (``quality.ranking.aggregate_choice``, each worker right with its
  default reliability 0.7). The confidence is the winner's posterior; the task's own choices,
  where it has a single-choice list, give the number of options K (else the answers seen,
  at least 2). The response is the first submitted label holding the winning answer.
* ``boxes`` (imageannotation, boxes only): ``quality.boxes.box_consensus``; ``spans`` (named
  entities): ``quality.spans.span_consensus``. The confidence is the workers' agreement with
  the decision, averaged over the matched objects: the share who drew a kept object, the share
  who did not draw a dropped one (1 when nobody drew anything).
* ``text`` (textcollection): the one-coin vote per field; the confidence is the mean of the
  fields' posteriors.

Anything else (other geometries, shapes the above do not read) falls back to the vote on the
whole response. One label: that label, with the one-coin posterior of a single vote by a worker
of the default reliability among K options (0.85 for two, r + (1 - r) / K in general).

A project's fitted worker model (``workflow.worker_models``, Dawid-Skene fitted in the
background) replaces this vote for categorical tasks when it can read their labels; nothing here
is fitted per request.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from steelyard.quality.boxes import box_consensus
from steelyard.quality.ranking import aggregate_choice
from steelyard.quality.spans import span_consensus
from steelyard.tasktypes import registry

#: ``aggregate_choice``'s default: the quality core's prior reliability of a worker.
DEFAULT_RELIABILITY = 0.7

#: (worker id, response) in the order submitted.
Labels = Sequence[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The aggregate of a task's first ``n_labels`` labels. ``more``: whether an adaptive task
    needs another label, when a worker model decided it (``worker_models``); ``None`` leaves
    it to the confidence against the task's target."""

    response: dict[str, Any]
    confidence: float
    n_labels: int
    more: bool | None = None


class _Pad:
    """An option nobody chose: makes the vote count the options a worker could have picked."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _key(value: Any) -> Hashable:
    if isinstance(value, str | int | float | bool) or value is None:
        return (type(value).__name__, value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def vote(votes: Sequence[tuple[str, Any]], n_options: int | None = None) -> tuple[int, float]:
    """The one-coin vote on ``votes`` (worker, answer): the position of the first vote for the
    winner, and its posterior."""
    keys = [_key(answer) for _, answer in votes]
    seen = list(dict.fromkeys(keys))
    k = max(2, len(seen), n_options or 0)
    options: list[Hashable] = [*seen, *(_Pad(i) for i in range(k - len(seen)))]
    result = aggregate_choice(
        [(worker, key) for (worker, _), key in zip(votes, keys, strict=True)],
        options=options,
        default_reliability=DEFAULT_RELIABILITY,
    )
    return keys.index(result.chosen), _unit(result.probability)


def _unit(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def aggregate(type_name: str, params: dict[str, Any], labels: Labels) -> Outcome:
    """The response and confidence of a task of ``type_name`` with ``params`` from ``labels``."""
    if not labels:
        raise ValueError("a task is aggregated from at least one label")
    kind = registry.get(type_name).aggregator
    n = len(labels)
    if n > 1:
        if kind == "boxes" and _all_boxes(labels):
            return _geometric(labels, "boxes", params)
        if kind == "spans" and _all_have(labels, "annotations", list):
            return _geometric(labels, "spans", params)
        if kind == "text" and _all_have(labels, "annotations", dict):
            return _fields(labels)
    answer_key = {"categorical": "category", "ranking": "choice"}.get(kind)
    if answer_key is not None and all(set(r) == {answer_key} for _, r in labels):
        answers = [(w, r[answer_key]) for w, r in labels]
    else:
        answers = list(labels)
    first, confidence = vote(answers, _n_options(kind, params))
    return Outcome(labels[first][1], confidence, n)


def _n_options(kind: str, params: dict[str, Any]) -> int | None:
    if kind == "categorical" and not params.get("allow_multiple"):
        categories = params.get("categories")
        return len(categories) if isinstance(categories, list) else None
    if kind == "ranking":
        choices = params.get("choices")
        return len(choices) if isinstance(choices, list) else None
    return None


def _all_have(labels: Labels, key: str, kind: type) -> bool:
    return all(isinstance(r.get(key), kind) for _, r in labels)


def _all_boxes(labels: Labels) -> bool:
    return _all_have(labels, "annotations", list) and all(
        isinstance(a, dict) and a.get("type", "box") == "box" and "width" in a
        for _, r in labels
        for a in r["annotations"]
    )


def _geometric(labels: Labels, kind: str, params: dict[str, Any]) -> Outcome:
    drawn = [(worker, list(r["annotations"])) for worker, r in labels]
    if kind == "boxes":
        result: Any = box_consensus(drawn)
    else:
        text = params.get("text") or params.get("attachment")
        result = span_consensus(drawn, text=text if isinstance(text, str) else None)
    agreement = [o.support for o in result.objects] + [1.0 - o.support for o in result.dropped]
    confidence = sum(agreement) / len(agreement) if agreement else 1.0
    return Outcome(result.to_response(), _unit(confidence), len(labels))


def _fields(labels: Labels) -> Outcome:
    names = list(dict.fromkeys(name for _, r in labels for name in r["annotations"]))
    answers: dict[str, Any] = {}
    posteriors = []
    for name in names:
        votes = [(w, r["annotations"][name]) for w, r in labels if name in r["annotations"]]
        first, p = vote(votes)
        answers[name] = votes[first][1]
        posteriors.append(p)
    confidence = sum(posteriors) / len(posteriors) if posteriors else 1.0
    return Outcome({"annotations": answers}, _unit(confidence), len(labels))
