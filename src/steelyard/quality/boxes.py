"""Bounding-box consensus for one image.

Several workers draw boxes on the same image. Boxes are matched across workers into clusters
(one cluster per real object, a worker contributing at most one box to a cluster), clusters
drawn by too few workers are dropped, and each remaining cluster becomes one box whose
coordinates, label and attributes are (weighted) votes of its members. The matching and voting
machinery is shared with polygons, points and text spans and lives in
:mod:`steelyard.quality._consensus`; its public helpers are re-exported here, where they were
first defined.
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
    cluster_items,
    flatten,
    match_and_merge,
    merge_coordinates,
    ratio_iou,
    same_label,
    vote_attributes,
    weighted_median,
    weighted_vote,
)

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
    return ratio_iou(inter, union)


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


class BoxConsensus(Consensus[ConsensusBox]):
    """Kept objects (``objects``), clusters below ``min_workers`` (``dropped``)."""


def box_consensus(
    annotations: WorkerAnnotations,
    *,
    weights: Mapping[Hashable, float] | None = None,
    iou_threshold: float = 0.5,
    min_workers: int | None = None,
    merge: Merge = "mean",
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
    if not flat.items:
        return BoxConsensus((), (), flat.n_workers)
    boxes = np.array(
        [
            [float(b["left"]), float(b["top"]), float(b["width"]), float(b["height"])]
            for b in flat.items
        ]
    )
    similarity = iou_matrix(boxes, boxes)
    if match_labels:
        similarity = np.where(same_label(flat.items), similarity, 0.0)
    kept, dropped = match_and_merge(
        flat,
        similarity,
        iou_threshold,
        matching=matching,
        min_workers=min_workers,
        merge_cluster=lambda cluster: _merge_boxes(cluster, boxes[cluster.members], merge),
    )
    return BoxConsensus(tuple(kept), tuple(dropped), flat.n_workers)


def _merge_boxes(cluster: Cluster, boxes: FloatArray, merge: Merge) -> ConsensusBox:
    # average edges, not (left, width): the median of edges is a box some workers agree on
    edges = np.column_stack(
        [boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]]
    )
    x1, y1, x2, y2 = merge_coordinates(edges, cluster.vote_weights, merge)
    merged = np.array([[x1, y1, x2 - x1, y2 - y1]])
    label, label_share = cluster.vote_label()
    attributes, attribute_share = cluster.vote_attributes()
    return ConsensusBox(
        left=float(x1),
        top=float(y1),
        width=float(x2 - x1),
        height=float(y2 - y1),
        label=label,
        attributes=attributes,
        workers=cluster.workers,
        support=cluster.support,
        weighted_support=cluster.weighted_support,
        mean_iou=float(iou_matrix(boxes, merged).mean()),
        label_agreement=label_share,
        attribute_agreement=attribute_share,
    )
