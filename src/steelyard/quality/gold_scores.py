"""How close a worker's response is to a gold (expected) response: a score in [0, 1].

One measure per kind of answer; a task type names its measure in ``TaskTypeSpec.scorer`` (as it
names its ``aggregator``), and ``SCORERS`` maps the name to the measure and to the score at or
above which the answer counts as correct. Every measure gives 1 for a response equal to the
expected one and is symmetric in its two arguments.

* ``choice`` (categorization): the category exactly; a multiple choice by the Jaccard index of
  the two sets; taxonomies likewise, averaged over the taxonomies.
* ``objects`` (image annotation): objects matched one to one (Hungarian, on IoU) between the
  same geometry and label, a pair counting when its IoU reaches ``IOU_MATCH`` (boxes by box IoU,
  polygons and other vertex shapes by polygon IoU, points and anything else by equal
  coordinates); the score is the F1 of the matched objects, ``2 m / (|expected| + |response|)``.
* ``spans`` (named entities): span F1, a span counting when start, end and label are equal.
* ``fields`` (text collection): per field, equality after normalizing (case, surrounding and
  repeated white space; lists as sets), averaged over the fields either side answered.
* ``preference`` (comparison): the choice equal, with any field answers scored as ``fields``.

Two empty answers (no objects, no spans) agree fully.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .boxes import iou_matrix
from .polygons import polygon_iou_matrix, to_polygon

#: The IoU at which two drawn objects are the same object.
IOU_MATCH = 0.5

Measure = Callable[[Mapping[str, Any], Mapping[str, Any]], float]


@dataclass(frozen=True, slots=True)
class Scorer:
    measure: Measure
    #: A score at or above this is a correct answer.
    correct_at: float


def score(scorer: str, response: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    """``response`` against ``expected`` by the measure named ``scorer``, in [0, 1]."""
    value = SCORERS[scorer].measure(response, expected)
    return min(1.0, max(0.0, float(value)))


def is_correct(scorer: str, value: float) -> bool:
    return value >= SCORERS[scorer].correct_at - 1e-12


# --- sets and plain values ----------------------------------------------------------------


def _canon(value: Any) -> Hashable:
    """A hashable, normalized form: strings folded, lists as sets, mappings as sorted items."""
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple | set):
        return frozenset(_canon(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _canon(v)) for k, v in value.items()))
    return repr(value)


def jaccard(a: Any, b: Any) -> float:
    """Intersection over union of two answers taken as sets (a single value is a set of one)."""
    sa = set(a) if isinstance(a, list | tuple | set) else {a}
    sb = set(b) if isinstance(b, list | tuple | set) else {b}
    sa = {_canon(v) for v in sa}
    sb = {_canon(v) for v in sb}
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 1.0


def choice(response: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    parts: list[float] = []
    if "category" in expected or "category" in response:
        parts.append(jaccard(response.get("category", []), expected.get("category", [])))
    if "taxonomies" in expected or "taxonomies" in response:
        mine = response.get("taxonomies") or {}
        gold = expected.get("taxonomies") or {}
        parts.extend(jaccard(mine.get(k, []), gold.get(k, [])) for k in sorted({*mine, *gold}))
    return _mean(parts) if parts else float(_canon(dict(response)) == _canon(dict(expected)))


def fields(response: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    mine = response.get("annotations") or {}
    gold = expected.get("annotations") or {}
    names = sorted({*mine, *gold})
    same = [n in mine and n in gold and _canon(mine[n]) == _canon(gold[n]) for n in names]
    return _mean([float(x) for x in same])


def preference(response: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    parts: list[float] = []
    if "choice" in expected or "choice" in response:
        parts.append(float(_canon(response.get("choice")) == _canon(expected.get("choice"))))
    if "annotations" in expected or "annotations" in response:
        parts.append(fields(response, expected))
    return _mean(parts)


# --- matched objects -----------------------------------------------------------------------


def f1_matched(matched: int, n_expected: int, n_response: int) -> float:
    if n_expected + n_response == 0:
        return 1.0
    return 2.0 * matched / (n_expected + n_response)


def _match_count(iou: np.ndarray[Any, Any]) -> int:
    """Pairs of a one-to-one matching that maximizes total IoU, counting those ≥ IOU_MATCH."""
    if iou.size == 0:
        return 0
    rows, cols = linear_sum_assignment(-iou)
    return int(np.sum(iou[rows, cols] >= IOU_MATCH - 1e-12))


def _box(o: Mapping[str, Any]) -> list[float]:
    return [float(o.get(k, 0.0)) for k in ("left", "top", "width", "height")]


def _iou(kind: str, a: list[Mapping[str, Any]], b: list[Mapping[str, Any]]) -> np.ndarray[Any, Any]:
    if kind == "box":
        return iou_matrix(np.array([_box(o) for o in a]), np.array([_box(o) for o in b]))
    if all(isinstance(o.get("vertices"), list) for o in (*a, *b)):
        return polygon_iou_matrix(
            [to_polygon(o["vertices"]) for o in a], [to_polygon(o["vertices"]) for o in b]
        )
    # Points and anything without an area: the same object when its coordinates are equal.
    shape = [[float(_geometry(x) == _geometry(y)) for y in b] for x in a]
    return np.array(shape, dtype=np.float64).reshape(len(a), len(b))


_NOT_GEOMETRY = ("uuid", "type", "label", "attributes")


def _geometry(o: Mapping[str, Any]) -> Hashable:
    coords = {k: v for k, v in o.items() if k not in _NOT_GEOMETRY}
    return _canon({k: round(v, 6) if isinstance(v, float) else v for k, v in coords.items()})


def objects(response: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    mine = [o for o in response.get("annotations") or [] if isinstance(o, Mapping)]
    gold = [o for o in expected.get("annotations") or [] if isinstance(o, Mapping)]
    groups: dict[tuple[str, str], tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]] = {}
    for side, items in ((0, mine), (1, gold)):
        for o in items:
            key = (str(o.get("type", "box")), str(o.get("label")))
            groups.setdefault(key, ([], []))[side].append(o)
    matched = sum(_match_count(_iou(kind, a, b)) for (kind, _), (a, b) in groups.items() if a and b)
    return f1_matched(matched, len(gold), len(mine))


def spans(response: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    def keys(r: Mapping[str, Any]) -> set[tuple[Any, Any, str]]:
        return {
            (a.get("start"), a.get("end"), str(a.get("label")))
            for a in r.get("annotations") or []
            if isinstance(a, Mapping)
        }

    mine, gold = keys(response), keys(expected)
    return f1_matched(len(mine & gold), len(gold), len(mine))


SCORERS: dict[str, Scorer] = {
    "choice": Scorer(choice, 1.0),
    "objects": Scorer(objects, 0.8),
    "spans": Scorer(spans, 0.8),
    "fields": Scorer(fields, 1.0),
    "preference": Scorer(preference, 1.0),
}

__all__ = [
    "IOU_MATCH",
    "SCORERS",
    "Scorer",
    "choice",
    "f1_matched",
    "fields",
    "is_correct",
    "jaccard",
    "objects",
    "preference",
    "score",
    "spans",
]
