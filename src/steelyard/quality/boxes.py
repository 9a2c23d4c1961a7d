"""Bounding-box consensus for one image, and the matching machinery shared by all geometries.

Several workers draw boxes on the same image. Boxes are matched across workers into clusters
(one cluster per real object, a worker contributing at most one box to a cluster), clusters
drawn by too few workers are dropped, and each remaining cluster becomes one box whose
coordinates, label and attributes are (weighted) votes of its members. Polygons, points and
text spans reuse :func:`cluster_items`, :func:`weighted_vote` and :func:`vote_attributes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Matching = Literal["hungarian", "greedy"]
WorkerAnnotations = Sequence[tuple[Hashable, Sequence[Mapping[str, Any]]]]

__all__ = [
    "BoxConsensus",
    "ConsensusBox",
    "box_consensus",
    "cluster_items",
    "iou_matrix",
    "vote_attributes",
    "weighted_median",
    "weighted_vote",
]

#: namespace of the deterministic uuids given to consensus annotations
ANNOTATION_NAMESPACE = uuid.UUID("5f0c8a53-3c1e-4e0b-9a52-8f3c7a1d2e64")


# --------------------------------------------------------------------------- shared machinery


@dataclass(frozen=True)
class Flattened:
    """Every worker's items in one list, with the worker of each and each worker's weight."""

    worker_ids: list[Hashable]
    worker_weights: FloatArray
    owner: IntArray
    items: list[Mapping[str, Any]]


def flatten(annotations: WorkerAnnotations, weights: Mapping[Hashable, float] | None) -> Flattened:
    """Flatten ``[(worker_id, [item, ...]), ...]``; a worker listed twice is merged."""
    worker_ids: list[Hashable] = []
    position: dict[Hashable, int] = {}
    owner: list[int] = []
    items: list[Mapping[str, Any]] = []
    for worker, worker_items in annotations:
        if worker not in position:
            position[worker] = len(worker_ids)
            worker_ids.append(worker)
        for item in worker_items:
            owner.append(position[worker])
            items.append(item)
    ww = np.array([1.0 if weights is None else float(weights.get(w, 1.0)) for w in worker_ids])
    if np.any(ww < 0) or not np.all(np.isfinite(ww)):
        raise ValueError("worker weights must be finite and non-negative")
    return Flattened(worker_ids, ww, np.asarray(owner, dtype=np.int64), items)


def cluster_items(
    similarity: FloatArray,
    owner: IntArray,
    threshold: float,
    *,
    method: Matching = "hungarian",
    worker_order: Sequence[int] | None = None,
) -> list[IntArray]:
    """Group items so that each group holds at most one item per worker.

    ``similarity`` is the items x items matrix (IoU, closeness...); two items may share a group
    only if their similarity is at least ``threshold``.

    * ``hungarian``: workers are visited in ``worker_order`` (default: by id code); each
      worker's items are assigned to the existing groups by an optimal one-to-one assignment
      (:func:`scipy.optimize.linear_sum_assignment`) on the mean similarity to each group's
      members; items left unassigned open new groups.
    * ``greedy``: all cross-worker pairs at or above the threshold, most similar first, join
      their groups unless that would put two items of one worker in a group (single linkage
      with cannot-link constraints). Independent of the order of workers.

    Groups are returned sorted by their first item.
    """
    n = len(owner)
    if n == 0:
        return []
    if method == "greedy":
        return _greedy(similarity, owner, threshold)
    if method != "hungarian":
        raise ValueError("method must be 'hungarian' or 'greedy'")
    order = list(worker_order) if worker_order is not None else sorted(set(owner.tolist()))
    group = np.full(n, -1, dtype=np.int64)
    n_groups = 0
    for worker in order:
        mine = np.flatnonzero(owner == worker)
        if len(mine) == 0:
            continue
        placed = np.flatnonzero(group >= 0)
        if n_groups and len(placed):
            onehot = np.zeros((len(placed), n_groups))
            onehot[np.arange(len(placed)), group[placed]] = 1.0
            mean_sim = (similarity[np.ix_(mine, placed)] @ onehot) / onehot.sum(axis=0)
            # shift allowed pairs above 0 so that a pair exactly at the threshold still
            # beats leaving an item unmatched
            allowed = np.where(mean_sim >= threshold, 1.0 + mean_sim - threshold, 0.0)
            rows, cols = linear_sum_assignment(allowed, maximize=True)
            ok = mean_sim[rows, cols] >= threshold
            group[mine[rows[ok]]] = cols[ok]
        for item in mine[group[mine] < 0]:
            group[item] = n_groups
            n_groups += 1
    return _groups(group)


def _greedy(similarity: FloatArray, owner: IntArray, threshold: float) -> list[IntArray]:
    n = len(owner)
    i, j = np.triu_indices(n, k=1)
    keep = (owner[i] != owner[j]) & (similarity[i, j] >= threshold)
    i, j = i[keep], j[keep]
    order = np.lexsort((j, i, -similarity[i, j]))  # ties broken by position: deterministic
    parent = list(range(n))
    members: dict[int, set[int]] = {k: {int(owner[k])} for k in range(n)}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in zip(i[order].tolist(), j[order].tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb or members[ra] & members[rb]:
            continue
        parent[rb] = ra
        members[ra] |= members.pop(rb)
    return _groups(np.asarray([find(k) for k in range(n)], dtype=np.int64))


def _groups(group: IntArray) -> list[IntArray]:
    _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    ranked = np.argsort(np.argsort(first))  # renumber groups by first appearance
    labels = ranked[inverse]
    return [np.flatnonzero(labels == g) for g in range(len(first))]


def weighted_vote(
    values: Sequence[Hashable], weights: Sequence[float] | FloatArray
) -> tuple[Any, float]:
    """The value with the largest total weight and its share of the weight.

    Ties go to the value seen first. Returns ``(None, nan)`` when there are no values.
    """
    totals: dict[Hashable, float] = {}
    for value, weight in zip(values, weights, strict=True):
        totals[value] = totals.get(value, 0.0) + float(weight)
    if not totals:
        return None, float("nan")
    winner = max(totals, key=lambda v: totals[v])  # max keeps the first of equal maxima
    total = sum(totals.values())
    share = totals[winner] / total if total > 0 else 1.0 / len(totals)
    return winner, share


def hashable_key(value: Any) -> Hashable:
    if isinstance(value, list):
        return tuple(hashable_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable_key(v)) for k, v in value.items()))
    return value  # type: ignore[no-any-return]


def vote_attributes(
    items: Sequence[Mapping[str, Any]], weights: Sequence[float] | FloatArray
) -> tuple[dict[str, Any], dict[str, float]]:
    """Vote each attribute among the members that answered it; return values and agreement."""
    votes: dict[str, tuple[list[Hashable], list[Any], list[float]]] = {}
    for item, weight in zip(items, weights, strict=True):
        for name, value in (item.get("attributes") or {}).items():
            keys, originals, ws = votes.setdefault(name, ([], [], []))
            keys.append(hashable_key(value))
            originals.append(value)
            ws.append(float(weight))
    values: dict[str, Any] = {}
    agreement: dict[str, float] = {}
    for name, (keys, originals, ws) in votes.items():
        winner, share = weighted_vote(keys, ws)
        values[name] = originals[keys.index(winner)]
        agreement[name] = share
    return values, agreement


def weighted_median(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Column-wise weighted (lower) median of ``values`` (k x d), one of the given values."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones_like(w)
    order = np.argsort(values, axis=0, kind="stable")
    cum = np.cumsum(w[order], axis=0)
    pick = np.argmax(cum >= cum[-1] / 2.0, axis=0)
    cols = np.arange(values.shape[1])
    return np.asarray(values[order[pick, cols], cols], dtype=np.float64)


def same_label(items: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.bool_]:
    """items x items: whether two items carry the same label."""
    codes: dict[Hashable, int] = {}
    coded = np.array(
        [codes.setdefault(hashable_key(i.get("label")), len(codes)) for i in items], dtype=np.int64
    )
    return np.asarray(coded[:, None] == coded[None, :], dtype=np.bool_)


def default_min_workers(n_workers: int) -> int:
    """A strict majority of the workers who annotated the image."""
    return n_workers // 2 + 1


def annotation_uuid(payload: Mapping[str, Any]) -> str:
    """A uuid that depends only on the content, so re-running consensus gives the same ids."""
    return str(uuid.uuid5(ANNOTATION_NAMESPACE, repr(sorted(payload.items()))))


# --------------------------------------------------------------------------- boxes


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box of ``a`` (n x 4: left, top, width, height) with every box of ``b``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1 = a[:, 0:1], a[:, 1:2]
    ax2, ay2 = ax1 + a[:, 2:3], ay1 + a[:, 3:4]
    bx1, by1 = b[:, 0], b[:, 1]
    bx2, by2 = bx1 + b[:, 2], by1 + b[:, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
    inter = iw * ih
    union = (a[:, 2:3] * a[:, 3:4]) + (b[:, 2] * b[:, 3]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.asarray(iou, dtype=np.float64)


@dataclass(frozen=True)
class ConsensusBox:
    """One merged object and how much the workers agreed on it.

    ``support`` is the fraction of the image's workers who drew it, ``weighted_support`` the
    same by worker weight; ``mean_iou`` is the members' mean IoU with the merged box;
    ``label_agreement`` and ``attribute_agreement`` are the winning values' weight shares.
    """

    left: float
    top: float
    width: float
    height: float
    label: Any
    attributes: dict[str, Any]
    workers: tuple[Hashable, ...]
    support: float
    weighted_support: float
    mean_iou: float
    label_agreement: float
    attribute_agreement: dict[str, float] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        """A Scale ``imageannotation`` box annotation."""
        body: dict[str, Any] = {
            "type": "box",
            "label": self.label,
            "attributes": dict(self.attributes),
            "left": self.left,
            "top": self.top,
            "width": self.width,
            "height": self.height,
        }
        return {"uuid": annotation_uuid(body), **body}


@dataclass(frozen=True)
class BoxConsensus:
    """Kept objects (``objects``), clusters below ``min_workers`` (``dropped``)."""

    objects: tuple[ConsensusBox, ...]
    dropped: tuple[ConsensusBox, ...]
    n_workers: int

    def to_response(self) -> dict[str, Any]:
        return {"annotations": [o.to_response() for o in self.objects]}


def box_consensus(
    annotations: WorkerAnnotations,
    *,
    weights: Mapping[Hashable, float] | None = None,
    iou_threshold: float = 0.5,
    min_workers: int | None = None,
    merge: Literal["mean", "median"] = "mean",
    matching: Matching = "hungarian",
    match_labels: bool = False,
) -> BoxConsensus:
    r"""Merge several workers' boxes on one image into one set of boxes.

    Boxes of different workers whose IoU is at least ``iou_threshold`` are matched (see
    :func:`cluster_items`; workers are visited by decreasing weight). A cluster drawn by at
    least ``min_workers`` workers (default: a strict majority of the workers listed, including
    those who drew nothing) becomes one box:

    .. math:: \hat b = \frac{\sum_{w \in C} q_w\, b_w}{\sum_{w\in C} q_w}

    for ``merge="mean"`` (coordinates of the left/top and right/bottom edges, weights
    :math:`q_w` from ``weights``, default 1), or the weighted median of each edge for
    ``merge="median"``. Label and attributes are weighted votes. With ``match_labels`` only
    boxes of the same label match. The assignment step is Kuhn's Hungarian method (*The
    Hungarian method for the assignment problem*, Naval Research Logistics Quarterly, 1955).

    >>> result = box_consensus([
    ...     ("ann", [{"left": 10, "top": 10, "width": 100, "height": 50, "label": "car"}]),
    ...     ("bob", [{"left": 12, "top": 10, "width": 100, "height": 50, "label": "car"}]),
    ...     ("cid", [{"left": 400, "top": 300, "width": 20, "height": 20, "label": "cat"}]),
    ... ])
    >>> [(o.left, o.label, round(o.support, 2)) for o in result.objects]
    [(11.0, 'car', 0.67)]
    """
    flat = flatten(annotations, weights)
    n_workers = len(flat.worker_ids)
    need = default_min_workers(n_workers) if min_workers is None else min_workers
    if not flat.items:
        return BoxConsensus((), (), n_workers)
    boxes = np.array(
        [
            [float(b["left"]), float(b["top"]), float(b["width"]), float(b["height"])]
            for b in flat.items
        ]
    )
    similarity = iou_matrix(boxes, boxes)
    if match_labels:
        similarity = np.where(same_label(flat.items), similarity, 0.0)
    worker_order = np.argsort(-flat.worker_weights, kind="stable").tolist()
    groups = cluster_items(
        similarity, flat.owner, iou_threshold, method=matching, worker_order=worker_order
    )
    kept: list[ConsensusBox] = []
    dropped: list[ConsensusBox] = []
    total_weight = float(flat.worker_weights.sum())
    for members in groups:
        obj = _merge_boxes(flat, members, boxes[members], merge, n_workers, total_weight)
        (kept if len(members) >= need else dropped).append(obj)
    return BoxConsensus(tuple(kept), tuple(dropped), n_workers)


def _merge_boxes(
    flat: Flattened,
    members: IntArray,
    boxes: FloatArray,
    merge: Literal["mean", "median"],
    n_workers: int,
    total_weight: float,
) -> ConsensusBox:
    q = flat.worker_weights[flat.owner[members]]
    vote_w = q if q.sum() > 0 else np.ones_like(q)
    # average edges, not (left, width): the median of edges is a box some workers agree on
    edges = np.column_stack(
        [boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]]
    )
    if merge == "mean":
        x1, y1, x2, y2 = (vote_w @ edges) / vote_w.sum()
    elif merge == "median":
        x1, y1, x2, y2 = weighted_median(edges, vote_w)
    else:
        raise ValueError("merge must be 'mean' or 'median'")
    merged = np.array([[x1, y1, x2 - x1, y2 - y1]])
    items = [flat.items[m] for m in members]
    label, label_share = weighted_vote([hashable_key(i.get("label")) for i in items], vote_w)
    attributes, attribute_share = vote_attributes(items, vote_w)
    return ConsensusBox(
        left=float(x1),
        top=float(y1),
        width=float(x2 - x1),
        height=float(y2 - y1),
        label=label,
        attributes=attributes,
        workers=tuple(flat.worker_ids[o] for o in flat.owner[members]),
        support=len(members) / n_workers,
        weighted_support=float(q.sum()) / total_weight if total_weight > 0 else float("nan"),
        mean_iou=float(iou_matrix(boxes, merged).mean()),
        label_agreement=label_share,
        attribute_agreement=attribute_share,
    )
