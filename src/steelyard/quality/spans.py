"""Named-entity span consensus: match workers' spans, vote labels, resolve overlaps.

Spans are ``{start, end, label}`` with ``end`` exclusive (Python slice convention), so the
span's text is ``text[start:end]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .boxes import (
    Flattened,
    Matching,
    WorkerAnnotations,
    cluster_items,
    default_min_workers,
    flatten,
    hashable_key,
    weighted_median,
    weighted_vote,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = ["ConsensusSpan", "SpanConsensus", "span_consensus", "span_iou_matrix"]


def span_iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """Character IoU of every span of ``a`` (n x 2: start, end) with every span of ``b``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(a[:, 1:2], b[:, 1]) - np.maximum(a[:, 0:1], b[:, 0])
    inter = np.clip(inter, 0.0, None)
    union = (a[:, 1:2] - a[:, 0:1]) + (b[:, 1] - b[:, 0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.asarray(iou, dtype=np.float64)


@dataclass(frozen=True)
class ConsensusSpan:
    """One consensus span.

    ``support``: fraction of workers who marked a matching span; ``label_agreement``: weight
    share of the winning label among them; ``confidence``: the weight share of *all* workers
    who marked it with the winning label (support x label agreement, by weight);
    ``boundary_agreement``: the members' mean character IoU with the consensus span.
    """

    start: int
    end: int
    label: Any
    text: str | None
    workers: tuple[Hashable, ...]
    support: float
    label_agreement: float
    boundary_agreement: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "label": self.label}
        if self.text is not None:
            out["text"] = self.text
        out["confidence"] = self.confidence
        return out


@dataclass(frozen=True)
class SpanConsensus:
    """Kept spans sorted by start (``spans``); ``dropped``: too few workers or overlapped."""

    spans: tuple[ConsensusSpan, ...]
    dropped: tuple[ConsensusSpan, ...]
    n_workers: int

    def to_response(self) -> dict[str, Any]:
        """``{"annotations": [{start, end, label, text?, confidence}, ...]}``."""
        return {"annotations": [s.to_dict() for s in self.spans]}


def span_consensus(
    annotations: WorkerAnnotations,
    *,
    text: str | None = None,
    weights: Mapping[Hashable, float] | None = None,
    mode: Literal["exact", "overlap"] = "exact",
    iou_threshold: float = 0.5,
    min_workers: int | None = None,
    allow_overlaps: bool = False,
    matching: Matching = "hungarian",
) -> SpanConsensus:
    r"""Merge several workers' entity spans on one text.

    *Matching.* In ``exact`` mode two spans match when their boundaries are identical (label
    disagreements are voted, not split); in ``overlap`` mode when their character IoU

    .. math:: \mathrm{IoU}(s, s') = \frac{|s \cap s'|}{|s \cup s'|} \ge \text{iou\_threshold},

    and the merged boundaries are the weighted medians of the members' starts and ends
    (always boundaries some worker chose). A worker contributes at most one span to a match.

    *Keeping.* A matched span is kept when at least ``min_workers`` workers (default: a strict
    majority) marked it. Its label is the weighted vote; ``confidence`` is
    :math:`\sum_{w:\,\text{label}_w = \hat\ell} q_w / \sum_{w} q_w` over all workers.

    *Overlaps.* Unless ``allow_overlaps``, kept spans are accepted by decreasing confidence
    (then length, then position) and a span overlapping an accepted one is dropped: greedy
    decoding of a flat (non-nested) entity layer. This is a span-level vote; the token-level
    probabilistic alternative is Rodrigues, Pereira & Ribeiro, *Sequence labeling with
    multiple annotators*, Machine Learning 95(2), 2014.

    >>> result = span_consensus([
    ...     ("ann", [{"start": 0, "end": 5, "label": "PER"}]),
    ...     ("bob", [{"start": 0, "end": 5, "label": "PER"}]),
    ...     ("cid", [{"start": 0, "end": 5, "label": "ORG"}]),
    ... ], text="Alice went home")
    >>> result.to_response()["annotations"][0]["text"], result.spans[0].confidence
    ('Alice', 0.6666666666666666)
    """
    flat = flatten(annotations, weights)
    n_workers = len(flat.worker_ids)
    need = default_min_workers(n_workers) if min_workers is None else min_workers
    if not flat.items:
        return SpanConsensus((), (), n_workers)
    bounds = np.array([[float(s["start"]), float(s["end"])] for s in flat.items])
    if np.any(bounds[:, 1] < bounds[:, 0]):
        raise ValueError("a span ends before it starts")
    if mode == "exact":
        similarity = np.all(bounds[:, None, :] == bounds[None, :, :], axis=-1).astype(np.float64)
        threshold = 1.0
    elif mode == "overlap":
        similarity = span_iou_matrix(bounds, bounds)
        threshold = iou_threshold
    else:
        raise ValueError("mode must be 'exact' or 'overlap'")
    order = np.argsort(-flat.worker_weights, kind="stable").tolist()
    groups = cluster_items(similarity, flat.owner, threshold, method=matching, worker_order=order)
    candidates = [_merge(flat, members, bounds[members], text, n_workers) for members in groups]
    kept = [c for c, g in zip(candidates, groups, strict=True) if len(g) >= need]
    dropped = [c for c, g in zip(candidates, groups, strict=True) if len(g) < need]
    if not allow_overlaps:
        kept, overlapped = _non_overlapping(kept)
        dropped += overlapped
    kept.sort(key=lambda s: (s.start, s.end))
    return SpanConsensus(tuple(kept), tuple(dropped), n_workers)


def _merge(
    flat: Flattened, members: IntArray, bounds: FloatArray, text: str | None, n_workers: int
) -> ConsensusSpan:
    q = flat.worker_weights[flat.owner[members]]
    vote_w = q if q.sum() > 0 else np.ones_like(q)
    start, end = (int(v) for v in weighted_median(bounds, vote_w))
    if end < start:  # independent medians of starts and ends can cross on odd clusters
        start, end = end, start
    labels = [hashable_key(flat.items[m].get("label")) for m in members]
    label, label_share = weighted_vote(labels, vote_w)
    total = float(flat.worker_weights.sum())
    agreeing = float(sum(w for lab, w in zip(labels, q, strict=True) if lab == label))
    iou = span_iou_matrix(bounds, np.array([[start, end]], dtype=np.float64))[:, 0]
    return ConsensusSpan(
        start=start,
        end=end,
        label=label,
        text=text[start:end] if text is not None else None,
        workers=tuple(flat.worker_ids[o] for o in flat.owner[members]),
        support=len(members) / n_workers,
        label_agreement=label_share,
        boundary_agreement=float(iou.mean()),
        confidence=agreeing / total if total > 0 else label_share * len(members) / n_workers,
    )


def _non_overlapping(
    spans: list[ConsensusSpan],
) -> tuple[list[ConsensusSpan], list[ConsensusSpan]]:
    ranked = sorted(spans, key=lambda s: (-s.confidence, -(s.end - s.start), s.start))
    accepted: list[ConsensusSpan] = []
    rejected: list[ConsensusSpan] = []
    for span in ranked:
        if any(span.start < other.end and other.start < span.end for other in accepted):
            rejected.append(span)
        else:
            accepted.append(span)
    return accepted, rejected
