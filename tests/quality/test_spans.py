"""NER span consensus: exact and overlap matching, votes, overlap resolution."""

from __future__ import annotations

import numpy as np
import pytest

from steelyard.quality.spans import span_consensus, span_iou_matrix

TEXT = "Ada Lovelace met Charles Babbage in London."
#       0123456789012345678901234567890123456789012
ADA = {"start": 0, "end": 12, "label": "PER"}
BABBAGE = {"start": 17, "end": 32, "label": "PER"}
LONDON = {"start": 36, "end": 42, "label": "LOC"}


def span(start: int, end: int, label: str) -> dict[str, object]:
    return {"start": start, "end": end, "label": label}


def test_span_iou_by_hand() -> None:
    iou = span_iou_matrix(np.array([[0, 10], [5, 15]]), np.array([[0, 10], [10, 20]]))
    np.testing.assert_allclose(iou, [[1.0, 0.0], [1 / 3, 1 / 3]])


def test_exact_mode_votes_labels_and_fills_text() -> None:
    result = span_consensus(
        [
            ("a", [ADA, BABBAGE, LONDON]),
            ("b", [ADA, BABBAGE, span(36, 42, "ORG")]),
            ("c", [ADA, LONDON]),
        ],
        text=TEXT,
    )
    spans = result.to_response()["annotations"]
    assert [(s["text"], s["label"]) for s in spans] == [
        ("Ada Lovelace", "PER"),
        ("Charles Babbage", "PER"),
        ("London", "LOC"),
    ]
    assert [s["confidence"] for s in spans] == pytest.approx([1.0, 2 / 3, 2 / 3])
    london = result.spans[2]
    assert london.support == 1.0 and london.label_agreement == pytest.approx(2 / 3)
    assert london.boundary_agreement == 1.0


def test_exact_mode_does_not_match_shifted_boundaries() -> None:
    drawn = [("a", [span(0, 12, "PER")]), ("b", [span(0, 3, "PER")]), ("c", [span(4, 12, "PER")])]
    exact = span_consensus(drawn)
    assert exact.spans == () and len(exact.dropped) == 3


def test_overlap_mode_merges_by_weighted_median_boundaries() -> None:
    drawn = [
        ("a", [span(0, 12, "PER")]),
        ("b", [span(0, 11, "PER")]),
        ("c", [span(1, 12, "PER")]),
    ]
    result = span_consensus(drawn, mode="overlap", text=TEXT)
    (merged,) = result.spans
    assert (merged.start, merged.end, merged.text) == (0, 12, "Ada Lovelace")
    assert merged.boundary_agreement == pytest.approx((1 + 11 / 12 + 11 / 12) / 3)
    # IoUs are 11/12 and 10/12: with a 0.95 threshold nothing matches and nothing is kept
    low = span_consensus(drawn, mode="overlap", iou_threshold=0.95)
    assert low.spans == () and len(low.dropped) == 3


def test_overlapping_outputs_are_resolved_by_confidence() -> None:
    drawn = [
        ("a", [span(0, 12, "PER"), span(4, 12, "PER")]),
        ("b", [span(0, 12, "PER"), span(4, 12, "PER")]),
        ("c", [span(0, 12, "PER")]),
    ]
    result = span_consensus(drawn)
    assert [(s.start, s.end) for s in result.spans] == [(0, 12)]
    assert [(s.start, s.end) for s in result.dropped] == [(4, 12)]
    both = span_consensus(drawn, allow_overlaps=True)
    assert [(s.start, s.end) for s in both.spans] == [(0, 12), (4, 12)]


def test_weights_and_min_workers() -> None:
    drawn = [("a", [span(0, 3, "PER")]), ("b", [span(0, 3, "ORG")]), ("c", [])]
    assert span_consensus(drawn).spans[0].label == "PER"  # tie: first seen
    weighted = span_consensus(drawn, weights={"a": 1.0, "b": 3.0, "c": 1.0})
    assert weighted.spans[0].label == "ORG"
    assert weighted.spans[0].confidence == pytest.approx(3 / 5)
    assert span_consensus(drawn, min_workers=3).spans == ()


def test_no_text_and_bad_input() -> None:
    result = span_consensus([("a", [ADA]), ("b", [ADA])])
    assert "text" not in result.to_response()["annotations"][0]
    with pytest.raises(ValueError):
        span_consensus([("a", [span(5, 2, "PER")])])
    with pytest.raises(ValueError):
        span_consensus([("a", [ADA])], mode="fuzzy")  # type: ignore[arg-type]
