"""Box consensus: IoU, matching, merging, votes, agreement and the Scale response shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from steelyard.quality.boxes import (
    box_consensus,
    cluster_items,
    iou_matrix,
    weighted_median,
    weighted_vote,
)


def box(
    left: float, top: float, width: float, height: float, label: str = "car", **attributes: Any
) -> dict[str, Any]:
    return {
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "label": label,
        "attributes": attributes,
    }


def test_iou_matrix_by_hand() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    # overlap 5 x 10 = 50, union 100 + 100 - 50 = 150
    assert iou[0].tolist() == pytest.approx([1 / 3, 0.0, 1.0])
    assert iou[1].tolist() == [0.0, 0.0, 0.0]  # a zero-area box overlaps nothing


def test_identical_boxes_give_the_same_box_and_full_agreement() -> None:
    drawn = box(10, 20, 30, 40, "car", color="red")
    result = box_consensus([(w, [drawn]) for w in ("a", "b", "c")])
    (obj,) = result.objects
    assert (obj.left, obj.top, obj.width, obj.height) == (10, 20, 30, 40)
    assert obj.label == "car" and obj.attributes == {"color": "red"}
    assert obj.support == obj.weighted_support == obj.mean_iou == obj.label_agreement == 1.0
    assert obj.attribute_agreement == {"color": 1.0}
    assert obj.workers == ("a", "b", "c")


def test_jittered_boxes_are_averaged_edge_by_edge() -> None:
    result = box_consensus(
        [
            ("a", [box(10, 10, 100, 50)]),
            ("b", [box(12, 8, 100, 54)]),
            ("c", [box(14, 12, 90, 50)]),
        ]
    )
    (obj,) = result.objects
    # left (10+12+14)/3 = 12, right (110+112+104)/3 = 108.667, top 10, bottom (60+62+62)/3
    assert obj.left == pytest.approx(12.0)
    assert obj.width == pytest.approx(326 / 3 - 12)
    assert obj.top == pytest.approx(10.0)
    assert obj.height == pytest.approx(184 / 3 - 10)
    assert 0.85 < obj.mean_iou < 1.0


def test_weighted_mean_and_median_merges() -> None:
    boxes = [("a", [box(0, 0, 10, 10)]), ("b", [box(2, 0, 10, 10)]), ("c", [box(3, 0, 10, 10)])]
    weighted = box_consensus(boxes, weights={"a": 3.0, "b": 1.0, "c": 0.0})
    assert weighted.objects[0].left == pytest.approx(0.5)  # (3*0 + 1*2) / 4
    assert weighted.objects[0].weighted_support == pytest.approx(1.0)
    median = box_consensus(boxes, merge="median")
    assert median.objects[0].left == 2.0


def test_a_lone_spurious_box_is_dropped() -> None:
    car = box(100, 100, 50, 50)
    result = box_consensus(
        [
            ("a", [car]),
            ("b", [car, box(400, 10, 20, 20, "cat")]),
            ("c", [car]),
            ("d", []),  # drew nothing: still counts towards the majority
        ]
    )
    assert [o.label for o in result.objects] == ["car"]
    assert result.objects[0].support == 0.75
    assert [o.label for o in result.dropped] == ["cat"]
    assert result.dropped[0].support == 0.25
    # 4 workers -> a strict majority is 3; with min_workers=1 the cat survives
    assert len(box_consensus([("a", [car]), ("b", [car])], min_workers=3).objects) == 0
    assert len(box_consensus([("b", [car, box(400, 10, 20, 20)])], min_workers=1).objects) == 2


def test_labels_and_attributes_are_voted_by_weight() -> None:
    drawn = [
        ("a", [box(0, 0, 10, 10, "car", occluded=True)]),
        ("b", [box(0, 0, 10, 10, "car", occluded=False)]),
        ("c", [box(0, 0, 10, 10, "truck", occluded=False)]),
    ]
    plain = box_consensus(drawn).objects[0]
    assert plain.label == "car" and plain.label_agreement == pytest.approx(2 / 3)
    assert plain.attributes == {"occluded": False}
    assert plain.attribute_agreement["occluded"] == pytest.approx(2 / 3)
    trusted = box_consensus(drawn, weights={"a": 1, "b": 1, "c": 5}).objects[0]
    assert trusted.label == "truck" and trusted.label_agreement == pytest.approx(5 / 7)


def test_a_worker_contributes_at_most_one_box_per_object() -> None:
    # b drew the same car twice; the duplicate must not count as a second worker
    car = box(0, 0, 100, 100)
    result = box_consensus([("a", [car]), ("b", [car, box(2, 2, 100, 100)])], min_workers=1)
    assert sorted(len(o.workers) for o in result.objects) == [1, 2]
    assert all(len(set(o.workers)) == len(o.workers) for o in result.objects)


@pytest.mark.parametrize("matching", ["hungarian", "greedy"])
def test_two_close_objects_are_not_merged(matching: str) -> None:
    left, right = box(0, 0, 10, 10), box(6, 0, 10, 10)  # IoU 4/16 = 0.25
    workers = [(w, [left, right]) for w in "abc"]
    result = box_consensus(workers, matching=matching)  # type: ignore[arg-type]
    assert len(result.objects) == 2
    assert {o.left for o in result.objects} == {0.0, 6.0}
    assert all(o.support == 1.0 for o in result.objects)


def test_match_labels_keeps_differently_labelled_boxes_apart() -> None:
    drawn = [("a", [box(0, 0, 10, 10, "car")]), ("b", [box(0, 0, 10, 10, "bus")])]
    assert len(box_consensus(drawn, min_workers=1).objects) == 1
    assert len(box_consensus(drawn, min_workers=1, match_labels=True).objects) == 2


def test_hungarian_assignment_is_optimal_not_first_come() -> None:
    # b's first box (2) matches both of a's boxes, a's first (0) best; b's second (3) only
    # matches a's first. Taking the best partner first would leave 3 alone; the optimal
    # assignment pairs 2 with 1 and 3 with 0.
    sim = np.array(
        [
            [1.0, 0.0, 0.9, 0.7],
            [0.0, 1.0, 0.8, 0.0],
            [0.9, 0.8, 1.0, 0.0],
            [0.7, 0.0, 0.0, 1.0],
        ]
    )
    owner = np.array([0, 0, 1, 1])
    groups = cluster_items(sim, owner, 0.5)
    assert sorted(g.tolist() for g in groups) == [[0, 3], [1, 2]]
    # greedy single linkage takes the best pair first
    greedy = cluster_items(sim, owner, 0.5, method="greedy")
    assert sorted(g.tolist() for g in greedy) == [[0, 2], [1], [3]]


def test_to_response_is_scale_shaped_and_deterministic() -> None:
    drawn = [(w, [box(1, 2, 3, 4, "sign", kind="stop")]) for w in "ab"]
    response = box_consensus(drawn).to_response()
    (annotation,) = response["annotations"]
    assert annotation["type"] == "box"
    assert {k: annotation[k] for k in ("left", "top", "width", "height", "label")} == {
        "left": 1.0,
        "top": 2.0,
        "width": 3.0,
        "height": 4.0,
        "label": "sign",
    }
    assert annotation["attributes"] == {"kind": "stop"}
    assert annotation["uuid"] == box_consensus(drawn).to_response()["annotations"][0]["uuid"]


def test_empty_and_helpers() -> None:
    assert box_consensus([]).objects == ()
    assert box_consensus([("a", []), ("b", [])]).n_workers == 2
    assert weighted_vote(["x", "y", "y"], [3, 1, 1]) == ("x", 0.6)
    winner, share = weighted_vote([], [])
    assert winner is None and np.isnan(share)
    values = np.array([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0]])
    assert weighted_median(values, np.array([1.0, 1.0, 1.0])).tolist() == [2.0, 8.0]
    assert weighted_median(values, np.array([0.0, 0.0, 1.0])).tolist() == [3.0, 7.0]
    with pytest.raises(ValueError):
        box_consensus([("a", [box(0, 0, 1, 1)])], weights={"a": -1.0})
