"""Polygon consensus (shapely IoU, repair, medoid) and point consensus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from steelyard.quality.points import point_consensus
from steelyard.quality.polygons import polygon_consensus, polygon_iou_matrix, to_polygon


def rect(x0: float, y0: float, x1: float, y1: float) -> list[dict[str, float]]:
    return [{"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1}, {"x": x0, "y": y1}]


def poly(
    vertices: Sequence[Mapping[str, float]], label: str = "roof", **attrs: Any
) -> dict[str, Any]:
    return {"vertices": vertices, "label": label, "attributes": attrs}


def test_polygon_iou_by_hand() -> None:
    a = [to_polygon(rect(0, 0, 2, 2)), to_polygon([])]
    b = [to_polygon(rect(1, 0, 3, 2)), to_polygon(rect(10, 10, 11, 11))]
    iou = polygon_iou_matrix(a, b)
    assert iou[0].tolist() == pytest.approx([1 / 3, 0.0])  # overlap 2, union 6
    assert iou[1].tolist() == [0.0, 0.0]  # empty polygon


def test_self_intersecting_polygon_is_repaired() -> None:
    bow_tie = [(0, 0), (10, 10), (10, 0), (0, 10)]
    fixed = to_polygon(bow_tie)
    assert fixed.is_valid
    assert fixed.area == pytest.approx(50.0)  # two triangles of 25
    assert to_polygon([(0, 0), (1, 1), (2, 2)]).is_empty  # a line has no area
    assert to_polygon([(0, 0), (1, 1)]).is_empty


def test_medoid_is_the_most_central_polygon() -> None:
    result = polygon_consensus(
        [
            ("a", [poly(rect(0, 0, 10, 10))]),
            ("b", [poly(rect(0, 0, 11, 10))]),  # between the other two: the medoid
            ("c", [poly(rect(0, 0, 12, 10))]),
        ]
    )
    (obj,) = result.objects
    assert obj.medoid_worker == "b"
    assert obj.vertices == ((0.0, 0.0), (11.0, 0.0), (11.0, 10.0), (0.0, 10.0))
    # IoUs with the medoid: 10/11, 1, 11/12
    assert obj.mean_iou == pytest.approx((10 / 11 + 1 + 11 / 12) / 3)
    assert obj.support == 1.0


def test_weights_break_medoid_ties_and_vote_labels() -> None:
    drawn = [("a", [poly(rect(0, 0, 10, 10), "roof")]), ("b", [poly(rect(0, 0, 11, 10), "wall")])]
    obj = polygon_consensus(drawn, weights={"a": 1.0, "b": 2.0}).objects[0]
    assert obj.medoid_worker == "b" and obj.label == "wall"
    assert obj.label_agreement == pytest.approx(2 / 3)


def test_spurious_polygon_dropped_and_response_shape() -> None:
    house = poly(rect(0, 0, 10, 10), color="red")
    result = polygon_consensus(
        [
            ("a", [house]),
            ("b", [house, poly(rect(50, 50, 60, 60), "tree")]),
            ("c", [house]),
        ]
    )
    assert [o.label for o in result.objects] == ["roof"]
    assert [o.label for o in result.dropped] == ["tree"]
    (annotation,) = result.to_response()["annotations"]
    assert annotation["type"] == "polygon"
    assert annotation["vertices"][1] == {"x": 10.0, "y": 0.0}
    assert annotation["attributes"] == {"color": "red"} and "uuid" in annotation


def test_invalid_medoid_is_output_repaired() -> None:
    bow_tie = [{"x": 0, "y": 0}, {"x": 10, "y": 10}, {"x": 10, "y": 0}, {"x": 0, "y": 10}]
    (obj,) = polygon_consensus([("a", [poly(bow_tie)])]).objects
    assert len(obj.vertices) >= 3
    assert to_polygon(list(obj.vertices)).is_valid


def test_points_are_matched_by_distance_and_averaged() -> None:
    result = point_consensus(
        [
            ("a", [{"x": 10, "y": 10, "label": "eye"}, {"x": 100, "y": 100, "label": "nose"}]),
            ("b", [{"x": 14, "y": 10, "label": "eye"}]),
            ("c", [{"x": 12, "y": 13, "label": "eye"}, {"x": 11, "y": 10, "label": "mouth"}]),
        ]
    )
    assert [o.label for o in result.objects] == ["eye"]
    eye = result.objects[0]
    assert (eye.x, eye.y) == pytest.approx((12.0, 11.0))
    assert eye.support == 1.0
    assert sorted(o.label for o in result.dropped) == ["mouth", "nose"]
    (annotation,) = result.to_response()["annotations"]
    assert annotation["type"] == "point" and annotation["x"] == pytest.approx(12.0)


def test_points_beyond_the_distance_do_not_match() -> None:
    drawn = [("a", [{"x": 0, "y": 0, "label": "p"}]), ("b", [{"x": 0, "y": 11, "label": "p"}])]
    assert len(point_consensus(drawn, min_workers=1).objects) == 2
    assert len(point_consensus(drawn, min_workers=1, max_distance=12).objects) == 1
    unlabelled = [("a", [{"x": 0, "y": 0, "label": "l"}]), ("b", [{"x": 0, "y": 1, "label": "r"}])]
    assert len(point_consensus(unlabelled, min_workers=1).objects) == 2
    assert len(point_consensus(unlabelled, min_workers=1, match_labels=False).objects) == 1


def test_points_weighted_median() -> None:
    drawn = [(w, [{"x": x, "y": 0, "label": "p"}]) for w, x in (("a", 0), ("b", 1), ("c", 9))]
    result = point_consensus(drawn, merge="median")
    assert result.objects[0].x == 1.0
