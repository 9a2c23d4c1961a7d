"""Matching and voting shared by the geometric consensus modules (boxes, polygons, points, spans).

Every geometry follows the same recipe: flatten the workers' items (:func:`flatten`), match
them across workers into clusters holding at most one item per worker (:func:`cluster_items`,
heavier workers first), merge each cluster into one object (geometry-specific), and keep the
clusters drawn by enough workers (:func:`match_and_merge`). Labels and attributes are weighted
votes (:func:`weighted_vote`, :func:`vote_attributes`); the result is a :class:`Consensus`.
Only the geometry (similarity and merge) lives in the per-geometry modules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Matching = Literal["hungarian", "greedy"]
Merge = Literal["mean", "median"]
WorkerAnnotations = Sequence[tuple[Hashable, Sequence[Mapping[str, Any]]]]

#: namespace of the deterministic uuids given to consensus annotations
ANNOTATION_NAMESPACE = uuid.UUID("5f0c8a53-3c1e-4e0b-9a52-8f3c7a1d2e64")


class ResponseItem(Protocol):
    """A merged object that knows its entry in a Scale response's ``annotations`` list."""

    def to_response(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=ResponseItem)


@dataclass(frozen=True)
class Consensus(Generic[T]):
    """Kept objects (``objects``) and merged clusters that were not kept (``dropped``).

    ``n_workers`` counts every worker listed, including those who drew nothing: it is the
    denominator of each object's ``support``. The per-geometry result classes
    (``BoxConsensus``...) are thin subclasses so that they keep their names and ``isinstance``.
    """

    objects: tuple[T, ...]
    dropped: tuple[T, ...]
    n_workers: int

    def to_response(self) -> dict[str, Any]:
        """``{"annotations": [...]}``: the kept objects in a Scale response."""
        return {"annotations": [o.to_response() for o in self.objects]}


@dataclass(frozen=True)
class Flattened:
    """Every worker's items in one list, with the worker of each and each worker's weight."""

    worker_ids: list[Hashable]
    worker_weights: FloatArray
    owner: IntArray
    items: list[Mapping[str, Any]]

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)


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


def match_and_merge(
    flat: Flattened,
    similarity: FloatArray,
    threshold: float,
    *,
    matching: Matching,
    min_workers: int | None,
    merge_cluster: Callable[[Cluster], T],
) -> tuple[list[T], list[T]]:
    """Cluster ``flat``'s items, merge each cluster, split them by how many workers drew them.

    Workers are visited by decreasing weight (stable, so equal weights keep the listed order):
    in the Hungarian pass the first workers seed the clusters, and those should be the most
    trusted. ``merge_cluster`` turns one cluster into one object. Returns ``(kept, dropped)``,
    each in cluster order; ``kept`` holds the clusters of at least ``min_workers`` items
    (default: a strict majority of the workers listed).
    """
    need = default_min_workers(flat.n_workers) if min_workers is None else min_workers
    order = np.argsort(-flat.worker_weights, kind="stable").tolist()
    groups = cluster_items(similarity, flat.owner, threshold, method=matching, worker_order=order)
    kept: list[T] = []
    dropped: list[T] = []
    for members in groups:
        obj = merge_cluster(Cluster.of(flat, members))
        (kept if len(members) >= need else dropped).append(obj)
    return kept, dropped


@dataclass(frozen=True)
class Cluster:
    """One matched group as the merge step sees it.

    ``weights`` are the members' worker weights :math:`q_w`; ``vote_weights`` the same, or all
    ones when they sum to 0 (so that a cluster of zero-weight workers still has a winner).
    ``support`` is the fraction of all listed workers in the cluster, ``weighted_support`` the
    same by weight (nan when every worker weighs 0).
    """

    members: IntArray
    items: list[Mapping[str, Any]]
    workers: tuple[Hashable, ...]
    weights: FloatArray
    vote_weights: FloatArray
    support: float
    weighted_support: float

    @classmethod
    def of(cls, flat: Flattened, members: IntArray) -> Cluster:
        q = flat.worker_weights[flat.owner[members]]
        total = float(flat.worker_weights.sum())
        return cls(
            members=members,
            items=[flat.items[m] for m in members],
            workers=tuple(flat.worker_ids[o] for o in flat.owner[members]),
            weights=q,
            vote_weights=q if q.sum() > 0 else np.ones_like(q),
            support=len(members) / flat.n_workers,
            weighted_support=float(q.sum()) / total if total > 0 else float("nan"),
        )

    def labels(self) -> list[Hashable]:
        """The members' labels, made hashable so that they can be voted and compared."""
        return [hashable_key(i.get("label")) for i in self.items]

    def vote_label(self) -> tuple[Any, float]:
        """The winning label and its share of the vote (see :func:`weighted_vote`)."""
        return weighted_vote(self.labels(), self.vote_weights)

    def vote_attributes(self) -> tuple[dict[str, Any], dict[str, float]]:
        """The winning value and agreement of every attribute (see :func:`vote_attributes`)."""
        return vote_attributes(self.items, self.vote_weights)


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
    """``value`` with lists and dicts turned into tuples, so that JSON values can be voted."""
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


def merge_coordinates(values: FloatArray, weights: FloatArray, merge: Merge) -> FloatArray:
    """Column-wise weighted mean (``"mean"``) or weighted median (``"median"``) of k x d values."""
    if merge == "mean":
        return np.asarray((weights @ values) / weights.sum(), dtype=np.float64)
    if merge == "median":
        return weighted_median(values, weights)
    raise ValueError("merge must be 'mean' or 'median'")


def ratio_iou(inter: FloatArray, union: FloatArray) -> FloatArray:
    """``inter / union``, and 0 where the union is empty (two degenerate shapes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.asarray(iou, dtype=np.float64)


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
