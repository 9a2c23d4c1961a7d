"""Keypoint consensus for one image: match points by distance, merge by weighted mean.

Works like :func:`steelyard.quality.boxes.box_consensus`: points of different workers closer
than ``max_distance`` pixels are matched (at most one point per worker in a cluster), clusters
marked by too few workers are dropped, and each kept cluster becomes one point.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .boxes import (
    Flattened,
    Matching,
    WorkerAnnotations,
    annotation_uuid,
    cluster_items,
    default_min_workers,
    flatten,
    hashable_key,
    same_label,
    vote_attributes,
    weighted_median,
    weighted_vote,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = ["ConsensusPoint", "PointConsensus", "point_consensus"]


@dataclass(frozen=True)
class ConsensusPoint:
    """One merged point; ``mean_distance`` is the members' mean distance to it in pixels."""

    x: float
    y: float
    label: Any
    attributes: dict[str, Any]
    workers: tuple[Hashable, ...]
    support: float
    weighted_support: float
    mean_distance: float
    label_agreement: float
    attribute_agreement: dict[str, float] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        """A Scale ``imageannotation`` point annotation."""
        body: dict[str, Any] = {
            "type": "point",
            "label": self.label,
            "attributes": dict(self.attributes),
            "x": self.x,
            "y": self.y,
        }
        return {"uuid": annotation_uuid(body), **body}


@dataclass(frozen=True)
class PointConsensus:
    """Kept points (``objects``) and clusters below ``min_workers`` (``dropped``)."""

    objects: tuple[ConsensusPoint, ...]
    dropped: tuple[ConsensusPoint, ...]
    n_workers: int

    def to_response(self) -> dict[str, Any]:
        return {"annotations": [o.to_response() for o in self.objects]}


def point_consensus(
    annotations: WorkerAnnotations,
    *,
    weights: Mapping[Hashable, float] | None = None,
    max_distance: float = 10.0,
    min_workers: int | None = None,
    merge: Literal["mean", "median"] = "mean",
    matching: Matching = "hungarian",
    match_labels: bool = True,
) -> PointConsensus:
    r"""Merge several workers' points on one image into one set of points.

    Two points of different workers may match when their distance :math:`d` is at most
    ``max_distance``; the matching maximises the closeness :math:`1 - d/d_{max}` (mean over
    the cluster's members, see :func:`steelyard.quality.boxes.cluster_items`). A kept cluster
    becomes

    .. math:: \hat p = \frac{\sum_{w\in C} q_w\, p_w}{\sum_{w\in C} q_w}

    (or the weighted median of each coordinate). Points carry little geometry of their own,
    so by default only points of the same label match (``match_labels``): the left and right
    eye of a face are often closer than the tolerance.

    >>> result = point_consensus([
    ...     ("ann", [{"x": 10, "y": 10, "label": "eye"}]),
    ...     ("bob", [{"x": 12, "y": 10, "label": "eye"}]),
    ... ])
    >>> (result.objects[0].x, result.objects[0].y, result.objects[0].mean_distance)
    (11.0, 10.0, 1.0)
    """
    if max_distance <= 0:
        raise ValueError("max_distance must be positive")
    flat = flatten(annotations, weights)
    n_workers = len(flat.worker_ids)
    need = default_min_workers(n_workers) if min_workers is None else min_workers
    if not flat.items:
        return PointConsensus((), (), n_workers)
    xy = np.array([[float(p["x"]), float(p["y"])] for p in flat.items])
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=-1))
    closeness = 1.0 - dist / max_distance
    if match_labels:
        closeness = np.where(same_label(flat.items), closeness, -1.0)
    order = np.argsort(-flat.worker_weights, kind="stable").tolist()
    groups = cluster_items(closeness, flat.owner, 0.0, method=matching, worker_order=order)
    kept: list[ConsensusPoint] = []
    dropped: list[ConsensusPoint] = []
    for members in groups:
        obj = _merge(flat, members, xy[members], merge, n_workers)
        (kept if len(members) >= need else dropped).append(obj)
    return PointConsensus(tuple(kept), tuple(dropped), n_workers)


def _merge(
    flat: Flattened,
    members: IntArray,
    xy: FloatArray,
    merge: Literal["mean", "median"],
    n_workers: int,
) -> ConsensusPoint:
    q = flat.worker_weights[flat.owner[members]]
    vote_w = q if q.sum() > 0 else np.ones_like(q)
    if merge == "mean":
        centre = (vote_w @ xy) / vote_w.sum()
    elif merge == "median":
        centre = weighted_median(xy, vote_w)
    else:
        raise ValueError("merge must be 'mean' or 'median'")
    items = [flat.items[m] for m in members]
    label, label_share = weighted_vote([hashable_key(i.get("label")) for i in items], vote_w)
    attributes, attribute_share = vote_attributes(items, vote_w)
    total = float(flat.worker_weights.sum())
    return ConsensusPoint(
        x=float(centre[0]),
        y=float(centre[1]),
        label=label,
        attributes=attributes,
        workers=tuple(flat.worker_ids[o] for o in flat.owner[members]),
        support=len(members) / n_workers,
        weighted_support=float(q.sum()) / total if total > 0 else float("nan"),
        mean_distance=float(np.sqrt(((xy - centre) ** 2).sum(axis=1)).mean()),
        label_agreement=label_share,
        attribute_agreement=attribute_share,
    )
