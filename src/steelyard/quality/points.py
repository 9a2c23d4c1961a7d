"""Keypoint consensus for one image: match points by distance, merge by weighted mean.

Works like :func:`steelyard.quality.boxes.box_consensus`: points of different workers closer
than ``max_distance`` pixels are matched (at most one point per worker in a cluster), clusters
marked by too few workers are dropped, and each kept cluster becomes one point.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._consensus import (
    Cluster,
    Consensus,
    FloatArray,
    Matching,
    Merge,
    WorkerAnnotations,
    annotation_uuid,
    flatten,
    match_and_merge,
    merge_coordinates,
    same_label,
)

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


class PointConsensus(Consensus[ConsensusPoint]):
    """Kept points (``objects``) and clusters below ``min_workers`` (``dropped``)."""


def point_consensus(
    annotations: WorkerAnnotations,
    *,
    weights: Mapping[Hashable, float] | None = None,
    max_distance: float = 10.0,
    min_workers: int | None = None,
    merge: Merge = "mean",
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
    if not flat.items:
        return PointConsensus((), (), flat.n_workers)
    xy = np.array([[float(p["x"]), float(p["y"])] for p in flat.items])
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=-1))
    closeness = 1.0 - dist / max_distance
    if match_labels:
        closeness = np.where(same_label(flat.items), closeness, -1.0)
    kept, dropped = match_and_merge(
        flat,
        closeness,
        0.0,
        matching=matching,
        min_workers=min_workers,
        merge_cluster=lambda cluster: _merge(cluster, xy[cluster.members], merge),
    )
    return PointConsensus(tuple(kept), tuple(dropped), flat.n_workers)


def _merge(cluster: Cluster, xy: FloatArray, merge: Merge) -> ConsensusPoint:
    centre = merge_coordinates(xy, cluster.vote_weights, merge)
    label, label_share = cluster.vote_label()
    attributes, attribute_share = cluster.vote_attributes()
    return ConsensusPoint(
        x=float(centre[0]),
        y=float(centre[1]),
        label=label,
        attributes=attributes,
        workers=cluster.workers,
        support=cluster.support,
        weighted_support=cluster.weighted_support,
        mean_distance=float(np.sqrt(((xy - centre) ** 2).sum(axis=1)).mean()),
        label_agreement=label_share,
        attribute_agreement=attribute_share,
    )
