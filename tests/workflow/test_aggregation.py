"""Labels → response and confidence, by each task type's declared aggregator."""

from __future__ import annotations

import pytest

from steelyard.workflow.aggregation import DEFAULT_RELIABILITY, aggregate

BOX = {"type": "box", "label": "car", "left": 10, "top": 10, "width": 100, "height": 50}


def test_categorical_vote_and_single_label() -> None:
    params = {"categories": ["a", "b", "c", "d"]}
    one = aggregate("categorization", params, [("w1", {"category": "b"})])
    assert one.response == {"category": "b"}
    assert one.confidence == pytest.approx(DEFAULT_RELIABILITY + (1 - DEFAULT_RELIABILITY) / 4)
    three = aggregate(
        "categorization",
        params,
        [("w1", {"category": "a"}), ("w2", {"category": "b"}), ("w3", {"category": "b"})],
    )
    assert three.response == {"category": "b"} and three.n_labels == 3
    assert one.confidence < three.confidence < 1.0
    # A tie goes to the answer submitted first.
    split = [("w1", {"category": "c"}), ("w2", {"category": "a"})]
    tie = aggregate("categorization", params, split)
    right, wrong = 0.7 + 0.3 / 4, 0.3 / 4  # one worker's likelihood of its own / another answer
    posterior = right * wrong / (2 * right * wrong + 2 * wrong * wrong)
    assert tie.response == {"category": "c"} and tie.confidence == pytest.approx(posterior)


def test_boxes_consensus_with_agreement_as_confidence() -> None:
    shifted = {**BOX, "left": 12}
    stray = {**BOX, "left": 400, "top": 300, "width": 20, "height": 20, "label": "cat"}
    out = aggregate(
        "imageannotation",
        {},
        [
            ("ann", {"annotations": [BOX]}),
            ("bob", {"annotations": [shifted]}),
            ("cid", {"annotations": [stray]}),
        ],
    )
    (kept,) = out.response["annotations"]
    assert kept["left"] == 11.0 and kept["label"] == "car"
    # Kept car drawn by 2 of 3, dropped cat not drawn by 2 of 3.
    assert out.confidence == pytest.approx(2 / 3)
    nothing = [("a", {"annotations": []}), ("b", {"annotations": []})]
    empty = aggregate("imageannotation", {}, nothing)
    assert empty.response == {"annotations": []} and empty.confidence == 1.0


def test_spans_comparison_and_text_fields() -> None:
    spans = aggregate(
        "namedentityrecognition",
        {"text": "Alice went home", "labels": ["PER", "ORG"]},
        [
            ("a", {"annotations": [{"start": 0, "end": 5, "label": "PER"}]}),
            ("b", {"annotations": [{"start": 0, "end": 5, "label": "PER"}]}),
        ],
    )
    assert spans.response["annotations"][0]["text"] == "Alice" and spans.confidence == 1.0
    choice = aggregate(
        "comparison",
        {"choices": ["x", "y"]},
        [("a", {"choice": "y"}), ("b", {"choice": "y"}), ("c", {"choice": "x"})],
    )
    assert choice.response == {"choice": "y"} and 0.5 < choice.confidence < 1.0
    fields = aggregate(
        "textcollection",
        {},
        [
            ("a", {"annotations": {"title": "Cat", "mood": "calm"}}),
            ("b", {"annotations": {"title": "Cat", "mood": "angry"}}),
            ("c", {"annotations": {"title": "Dog", "mood": "calm"}}),
        ],
    )
    assert fields.response == {"annotations": {"title": "Cat", "mood": "calm"}}
    assert 0.5 < fields.confidence < 1.0


def test_other_shapes_fall_back_to_a_vote_on_the_whole_response() -> None:
    polygon = {"type": "polygon", "label": "car", "vertices": [{"x": 1, "y": 1}]}
    out = aggregate(
        "imageannotation",
        {},
        [("a", {"annotations": [polygon]}), ("b", {"annotations": [polygon]})],
    )
    assert out.response == {"annotations": [polygon]} and out.confidence > 0.85


def test_no_labels_is_an_error() -> None:
    with pytest.raises(ValueError):
        aggregate("categorization", {}, [])
