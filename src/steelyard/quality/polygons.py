"""Polygon consensus for one image: IoU matching (shapely) and medoid merging.

Works like :func:`steelyard.quality.boxes.box_consensus`, with polygon IoU instead of box IoU.
Merging chooses the *medoid*: the member polygon with the highest weighted mean IoU to the
other members. Averaging vertices is not defined for polygons with different vertex counts
and starting points, and a rasterised majority needs an image size and loses the vertices the
workers placed; the medoid keeps a polygon a careful worker actually drew, with its corners.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from ._consensus import (
    Cluster,
    Consensus,
    FloatArray,
    Matching,
    WorkerAnnotations,
    annotation_uuid,
    flatten,
    match_and_merge,
    ratio_iou,
    same_label,
)

Vertices = tuple[tuple[float, float], ...]

__all__ = [
    "ConsensusPolygon",
    "PolygonConsensus",
    "polygon_consensus",
    "polygon_iou_matrix",
    "to_polygon",
]


def _coords(vertices: Sequence[Any]) -> list[tuple[float, float]]:
    return [
        (float(v["x"]), float(v["y"])) if isinstance(v, Mapping) else (float(v[0]), float(v[1]))
        for v in vertices
    ]


def to_polygon(vertices: Sequence[Any]) -> BaseGeometry:
    """A valid (Multi)Polygon from ``[{x, y}, ...]`` or ``[(x, y), ...]``.

    Self-intersecting rings (a "bow tie") are repaired with :func:`shapely.make_valid`, keeping
    only the areal parts; fewer than three distinct vertices give an empty polygon.
    """
    coords = _coords(vertices)
    if len(set(coords)) < 3:
        return Polygon()
    poly = Polygon(coords)
    if poly.is_valid:
        return poly
    repaired = shapely.make_valid(poly)
    if repaired.geom_type in ("Polygon", "MultiPolygon"):
        return repaired
    # a collection: keep its areal parts; a ring that collapsed to lines has none, and
    # buffer(0) is the classic last resort there
    areal = [g for g in shapely.get_parts(repaired) if g.geom_type in ("Polygon", "MultiPolygon")]
    result = shapely.union_all(areal) if areal else poly.buffer(0)
    return result if not result.is_empty else Polygon()


def polygon_iou_matrix(a: Sequence[BaseGeometry], b: Sequence[BaseGeometry]) -> FloatArray:
    """IoU of every geometry of ``a`` with every geometry of ``b``.

    Only pairs whose bounding boxes overlap are intersected (in one vectorised shapely call);
    the others are 0.
    """
    ga, gb = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    out = np.zeros((len(ga), len(gb)))
    if len(ga) == 0 or len(gb) == 0:
        return out
    area_a, area_b = shapely.area(ga), shapely.area(gb)
    ba, bb = shapely.bounds(ga), shapely.bounds(gb)  # NaN for empty geometries
    overlap = (
        (ba[:, None, 0] <= bb[None, :, 2])
        & (bb[None, :, 0] <= ba[:, None, 2])
        & (ba[:, None, 1] <= bb[None, :, 3])
        & (bb[None, :, 1] <= ba[:, None, 3])
    )
    i, j = np.nonzero(overlap)
    if len(i):
        inter = shapely.area(shapely.intersection(ga[i], gb[j]))
        out[i, j] = ratio_iou(inter, area_a[i] + area_b[j] - inter)
    return out


@dataclass(frozen=True)
class ConsensusPolygon:
    """One merged polygon and the workers' agreement on it (fields as in ``ConsensusBox``)."""

    vertices: Vertices
    label: Any
    attributes: dict[str, Any]
    workers: tuple[Hashable, ...]
    medoid_worker: Hashable
    support: float
    weighted_support: float
    mean_iou: float
    label_agreement: float
    attribute_agreement: dict[str, float] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        """A Scale ``imageannotation`` polygon annotation."""
        body: dict[str, Any] = {
            "type": "polygon",
            "label": self.label,
            "attributes": dict(self.attributes),
            "vertices": [{"x": x, "y": y} for x, y in self.vertices],
        }
        return {"uuid": annotation_uuid({**body, "vertices": self.vertices}), **body}


class PolygonConsensus(Consensus[ConsensusPolygon]):
    """Kept polygons (``objects``) and clusters below ``min_workers`` (``dropped``)."""


def polygon_consensus(
    annotations: WorkerAnnotations,
    *,
    weights: Mapping[Hashable, float] | None = None,
    iou_threshold: float = 0.5,
    min_workers: int | None = None,
    matching: Matching = "hungarian",
    match_labels: bool = False,
) -> PolygonConsensus:
    r"""Merge several workers' polygons on one image into one set of polygons.

    Polygons of different workers with IoU at least ``iou_threshold`` are matched (at most one
    per worker in a cluster, see :func:`steelyard.quality.boxes.cluster_items`); clusters drawn
    by at least ``min_workers`` workers (default: a strict majority) are kept. Each cluster is
    represented by its weighted medoid

    .. math:: \hat p = \arg\max_{p \in C} \frac{\sum_{p' \in C,\,p' \ne p} q_{p'}\,
              \mathrm{IoU}(p, p')}{\sum_{p' \in C,\,p' \ne p} q_{p'}}

    (ties: the heavier worker, then the first), with label and attributes voted by worker
    weight :math:`q`. The medoid is the "most central sample" of Kaufman & Rousseeuw,
    *Finding Groups in Data*, 1990 (PAM).

    >>> square = [{"x": 0, "y": 0}, {"x": 10, "y": 0}, {"x": 10, "y": 10}, {"x": 0, "y": 10}]
    >>> wide = [{"x": 0, "y": 0}, {"x": 11, "y": 0}, {"x": 11, "y": 10}, {"x": 0, "y": 10}]
    >>> result = polygon_consensus([
    ...     ("ann", [{"vertices": square, "label": "roof"}]),
    ...     ("bob", [{"vertices": wide, "label": "roof"}]),
    ...     ("cid", [{"vertices": square, "label": "roof"}]),
    ... ])
    >>> result.objects[0].vertices[:2], result.objects[0].support
    (((0.0, 0.0), (10.0, 0.0)), 1.0)
    """
    flat = flatten(annotations, weights)
    if not flat.items:
        return PolygonConsensus((), (), flat.n_workers)
    shapes = [to_polygon(item["vertices"]) for item in flat.items]
    similarity = polygon_iou_matrix(shapes, shapes)
    if match_labels:
        similarity = np.where(same_label(flat.items), similarity, 0.0)
    kept, dropped = match_and_merge(
        flat,
        similarity,
        iou_threshold,
        matching=matching,
        min_workers=min_workers,
        merge_cluster=lambda cluster: _merge(cluster, shapes, similarity),
    )
    return PolygonConsensus(tuple(kept), tuple(dropped), flat.n_workers)


def _merge(
    cluster: Cluster, shapes: Sequence[BaseGeometry], similarity: FloatArray
) -> ConsensusPolygon:
    members, vote_w = cluster.members, cluster.vote_weights
    sim = similarity[np.ix_(members, members)]
    k = len(members)
    if k == 1:
        best = 0
    else:
        off = ~np.eye(k, dtype=bool)
        w_other = np.where(off, vote_w[None, :], 0.0)
        centrality = (sim * w_other).sum(axis=1) / np.maximum(w_other.sum(axis=1), 1e-300)
        # lexsort's last key is primary: centrality, then worker weight, then position
        best = int(np.lexsort((np.arange(k), -vote_w, -np.round(centrality, 12)))[0])
    chosen = members[best]
    merged = shapes[chosen]
    ious = polygon_iou_matrix([shapes[m] for m in members], [merged])[:, 0]
    label, label_share = cluster.vote_label()
    attributes, attribute_share = cluster.vote_attributes()
    return ConsensusPolygon(
        vertices=_vertices(cluster.items[best]["vertices"], merged),
        label=label,
        attributes=attributes,
        workers=cluster.workers,
        medoid_worker=cluster.workers[best],
        support=cluster.support,
        weighted_support=cluster.weighted_support,
        mean_iou=float(ious.mean()),
        label_agreement=label_share,
        attribute_agreement=attribute_share,
    )


def _vertices(raw: Sequence[Any], shape: BaseGeometry) -> Vertices:
    """The drawn vertices when they form a valid polygon, else the repaired outline."""
    coords = _coords(raw)
    if len(set(coords)) >= 3 and Polygon(coords).is_valid:
        return tuple(coords)
    if shape.is_empty:
        return ()
    biggest = max(shapely.get_parts(shape), key=lambda g: g.area)
    return tuple((float(x), float(y)) for x, y in list(biggest.exterior.coords)[:-1])
