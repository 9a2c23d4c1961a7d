"""Named-entity span consensus: match workers' spans, vote labels, resolve overlaps.

Spans are ``{start, end, label}`` with ``end`` exclusive (Python slice convention), so the
span's text is ``text[start:end]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._consensus import (
    Cluster,
    Consensus,
    Flattened,
    FloatArray,
    Matching,
    WorkerAnnotations,
    flatten,
    match_and_merge,
    ratio_iou,
    weighted_median,
    weighted_vote,
)

__all__ = ["ConsensusSpan", "SpanConsensus", "span_consensus", "span_iou_matrix"]


def span_iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """Character IoU of every span of ``a`` (n x 2: start, end) with every span of ``b``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(a[:, 1:2], b[:, 1]) - np.maximum(a[:, 0:1], b[:, 0])
    inter = np.clip(inter, 0.0, None)
    union = (a[:, 1:2] - a[:, 0:1]) + (b[:, 1] - b[:, 0]) - inter
    return ratio_iou(inter, union)


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
        """``{start, end, label, text?, confidence}``: the span's entry in a response."""
        out: dict[str, Any] = {"start": self.start, "end": self.end, "label": self.label}
        if self.text is not None:
            out["text"] = self.text
        out["confidence"] = self.confidence
        return out

    def to_response(self) -> dict[str, Any]:
        """Same as :meth:`to_dict`; the name :class:`~._consensus.Consensus` asks items for."""
        return self.to_dict()


class SpanConsensus(Consensus[ConsensusSpan]):
    """Kept spans sorted by start (``spans``); ``dropped``: too few workers or overlapped.

    ``to_response()`` gives ``{"annotations": [{start, end, label, text?, confidence}, ...]}``.
    """

    @property
    def spans(self) -> tuple[ConsensusSpan, ...]:
        """The kept spans (``objects``), under the name span callers have always used."""
        return self.objects


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
    if not flat.items:
        return SpanConsensus((), (), flat.n_workers)
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
    kept, dropped = match_and_merge(
        flat,
        similarity,
        threshold,
        matching=matching,
        min_workers=min_workers,
        merge_cluster=lambda cluster: _merge(cluster, bounds[cluster.members], text, flat),
    )
    if not allow_overlaps:
        kept, overlapped = _non_overlapping(kept)
        dropped += overlapped
    kept.sort(key=lambda s: (s.start, s.end))
    return SpanConsensus(tuple(kept), tuple(dropped), flat.n_workers)


def _merge(
    cluster: Cluster, bounds: FloatArray, text: str | None, flat: Flattened
) -> ConsensusSpan:
    start, end = (int(v) for v in weighted_median(bounds, cluster.vote_weights))
    if end < start:  # independent medians of starts and ends can cross on odd clusters
        start, end = end, start
    labels = cluster.labels()
    label, label_share = weighted_vote(labels, cluster.vote_weights)
    total = float(flat.worker_weights.sum())
    agreeing = float(sum(w for lab, w in zip(labels, cluster.weights, strict=True) if lab == label))
    iou = span_iou_matrix(bounds, np.array([[start, end]], dtype=np.float64))[:, 0]
    k, n_workers = len(cluster.members), flat.n_workers
    return ConsensusSpan(
        start=start,
        end=end,
        label=label,
        text=text[start:end] if text is not None else None,
        workers=cluster.workers,
        support=cluster.support,
        label_agreement=label_share,
        boundary_agreement=float(iou.mean()),
        # with every worker at weight 0 fall back to the unweighted share
        confidence=agreeing / total if total > 0 else label_share * k / n_workers,
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
