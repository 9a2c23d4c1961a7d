"""Wawa: worker agreement with aggregate."""

from __future__ import annotations

from dataclasses import replace

from ._base import (
    CategoricalAggregator,
    TieBreak,
    agreement,
    clamp_gold,
    decide,
    normalize_rows,
    vote_matrix,
)
from ._data import CodedLabels, FloatArray, IntArray
from .majority_vote import majority_probas

__all__ = ["Wawa"]


class Wawa(CategoricalAggregator):
    r"""**Wawa** (Worker Agreement With Aggregate): a majority vote weighted by agreement.

    1. $\hat z^{MV}$ = majority vote (gold tasks set to their gold answer);
    2. $a_w$ = weighted fraction of worker $w$'s labels equal to $\hat z^{MV}$;
    3. $s_{tk} = \sum_{i: t_i = t,\ y_i = k} v_i\, a_{w_i}$, $\hat z_t = \arg\max_k s_{tk}$ and
       ``probas_`` $= s_{tk} / \sum_k s_{tk}$.

    ``skills_`` $= a_w$.  Ties (in step 1 and 3) follow ``tie_break`` as in ``MajorityVote``.
    This is the algorithm of crowd-kit's ``Wawa`` (Ustalov et al., *Learning from Crowds with
    Crowd-Kit*, JOSS 2024), with per-label weights $v_i$ and gold.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"),
        ...                    "label": ["x", "x", "y", "y", "y", "x"]})
        >>> Wawa().fit_predict(df).tolist()
        ['x', 'y']
    """

    def __init__(
        self, tie_break: TieBreak = "least_common", random_state: int | None = None
    ) -> None:
        self.tie_break = tie_break
        self.random_state = random_state

    def _decide(self, probas: FloatArray, data: CodedLabels) -> IntArray:
        return decide(probas, data, self.tie_break)

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        mv = majority_probas(data, gold)
        skills = agreement(data, self._decide(mv, data))
        weighted = replace(data, weights=data.weights * skills[data.workers])
        self.skills_ = skills
        self.n_iter_ = 1
        return clamp_gold(normalize_rows(vote_matrix(weighted)), gold)
