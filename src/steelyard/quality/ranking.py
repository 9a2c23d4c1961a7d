"""Pairwise preferences (RLHF comparisons): Bradley-Terry-Davidson with annotator reliability.

Input is a long table of comparisons with columns ``annotator``, ``item_a``, ``item_b`` and
``outcome`` (``"a"``, ``"b"`` or ``"tie"``), as a DataFrame, a mapping of columns or keyword
arrays. Items are response ids; a prompt's two responses form one compared pair.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import logsumexp

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = Sequence[Any] | npt.NDArray[Any]

__all__ = ["BradleyTerry", "ChoiceResult", "PairPreference", "aggregate_choice"]

_OUTCOMES = {"a": 0, "b": 1, "tie": 2}


@dataclass(frozen=True)
class PairPreference:
    """The fitted preference between two compared items.

    ``probability`` is the chance that ``preferred`` wins a decisive comparison,
    ``p_pref / (p_a + p_b)``; ``p_a``, ``p_b``, ``p_tie`` are the model's outcome
    probabilities for one more comparison by a reliable annotator.
    """

    item_a: Hashable
    item_b: Hashable
    preferred: Hashable
    probability: float
    p_a: float
    p_b: float
    p_tie: float
    n_comparisons: int


class BradleyTerry:
    r"""Bradley-Terry scores with Davidson ties and per-annotator reliability (a mixture).

    Item :math:`i` has strength :math:`\pi_i = e^{s_i}`; a reliable annotator comparing
    :math:`i` (shown as *a*) with :math:`j` answers

    .. math:: P(a) = \frac{\pi_i}{D},\ P(b) = \frac{\pi_j}{D},\
              P(\text{tie}) = \frac{\nu\sqrt{\pi_i\pi_j}}{D},\quad
              D = \pi_i + \pi_j + \nu\sqrt{\pi_i \pi_j}

    (Davidson, *On extending the Bradley-Terry model to accommodate ties in paired comparison
    experiments*, JASA 65, 1970). Annotator :math:`u` answers by the model with probability
    :math:`r_u` and otherwise at random, from the overall outcome frequencies symmetrised
    between *a* and *b* (a "spammer" component, as in MACE: Hovy et al., NAACL 2013):

    .. math:: P(y_k) = r_u\,P_{\text{BT}}(y_k) + (1 - r_u)\,q(y_k).

    The log-posterior, with a Beta(``reliability_prior``) prior on each :math:`r_u` and a
    Gaussian prior :math:`\tfrac{\lambda}{2}\sum_i s_i^2` (``regularization``) on the
    scores, is maximised over the scores, :math:`\log\nu` and :math:`\operatorname{logit}
    r_u` together by L-BFGS, starting from the (convex) fit without the spammer component.
    Its gradient is the EM one: comparison :math:`k` counts with the weight
    :math:`z_k = r_u P_{\text{BT}}(y_k) / P(y_k)` (``posteriors_``), and
    :math:`\partial / \partial \operatorname{logit} r_u = \sum_k (z_k - r_u)` plus the prior.
    The score prior keeps scores finite for items that always win and puts disconnected
    groups of items on a common scale.
    ``ties="none"`` fits plain Bradley-Terry (a tie counts half a win for each side);
    ``"auto"`` uses Davidson when the data contain a tie.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> strength = {"r1": 2.0, "r2": 1.0, "r3": 0.0}
    >>> rows = {"annotator": [], "item_a": [], "item_b": [], "outcome": []}
    >>> for _ in range(300):
    ...     a, b = rng.choice(list(strength), 2, replace=False)
    ...     p_a = 1 / (1 + np.exp(strength[b] - strength[a]))
    ...     for k, v in zip(rows, ["ann", a, b, "a" if rng.random() < p_a else "b"]):
    ...         rows[k].append(v)
    >>> model = BradleyTerry().fit(rows)
    >>> [str(i) for i in model.ranking()]
    ['r1', 'r2', 'r3']
    """

    item_ids_: npt.NDArray[Any]
    scores_: FloatArray
    annotator_ids_: npt.NDArray[Any]
    reliabilities_: FloatArray
    tie_parameter_: float
    posteriors_: FloatArray
    n_iter_: int
    converged_: bool

    def __init__(
        self,
        *,
        ties: Literal["auto", "davidson", "none"] = "auto",
        fit_reliability: bool = True,
        regularization: float = 0.1,
        reliability_prior: tuple[float, float] = (2.0, 1.0),
        max_iter: int = 500,
        tol: float = 1e-6,
    ) -> None:
        self.ties = ties
        self.fit_reliability = fit_reliability
        self.regularization = regularization
        self.reliability_prior = reliability_prior
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        comparisons: Any = None,
        *,
        annotators: ArrayLike | None = None,
        items_a: ArrayLike | None = None,
        items_b: ArrayLike | None = None,
        outcomes: ArrayLike | None = None,
    ) -> Self:
        if comparisons is not None:
            key = "annotator" if _has(comparisons, "annotator") else "worker"
            annotators, items_a, items_b = (
                comparisons[key],
                comparisons["item_a"],
                comparisons["item_b"],
            )
            outcomes = comparisons["outcome"]
        if annotators is None or items_a is None or items_b is None or outcomes is None:
            raise ValueError("need annotator, item_a, item_b and outcome columns")
        ann_ids, ann = np.unique(np.asarray(annotators), return_inverse=True)
        item_a, item_b = np.asarray(items_a), np.asarray(items_b)
        item_ids, codes = np.unique(np.concatenate([item_a, item_b]), return_inverse=True)
        ia, ib = codes[: len(item_a)].astype(np.int64), codes[len(item_a) :].astype(np.int64)
        if np.any(ia == ib):
            raise ValueError("an item is compared with itself")
        try:
            y = np.array([_OUTCOMES[str(o).lower()] for o in outcomes], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"outcome {exc.args[0]!r} is not 'a', 'b' or 'tie'") from exc
        if not (len(ann) == len(ia) == len(y)):
            raise ValueError("all columns must have the same length")
        davidson = self.ties == "davidson" or (self.ties == "auto" and bool(np.any(y == 2)))
        self._fit(ann.astype(np.int64), ia, ib, y, len(item_ids), len(ann_ids), davidson)
        self.item_ids_, self.annotator_ids_ = item_ids, ann_ids
        self._davidson = davidson
        self._pairs = (ia, ib)
        self._items: list[Hashable] = item_ids.tolist()  # plain Python ids for the outputs
        self._position: dict[Hashable, int] = {v: i for i, v in enumerate(self._items)}
        return self

    def _fit(
        self,
        ann: IntArray,
        ia: IntArray,
        ib: IntArray,
        y: IntArray,
        n_items: int,
        n_ann: int,
        davidson: bool,
    ) -> None:
        # target weights of the three outcomes; without a tie category a tie is half a win
        target = np.zeros((len(y), 3))
        target[np.arange(len(y)), y] = 1.0
        if not davidson:
            target[:, :2] += target[:, 2:3] / 2.0
            target[:, 2] = 0.0
        tie_share = float(target[:, 2].mean()) if len(y) else 0.0
        random_answer = np.array([(1 - tie_share) / 2, (1 - tie_share) / 2, tie_share])
        with np.errstate(divide="ignore"):
            log_random = (target * np.log(np.where(target > 0, random_answer, 1.0))).sum(1)

        data = _Data(ann, ia, ib, target, log_random, n_items, n_ann, davidson)
        # the scores-only fit is convex: a safe start for the joint (non-convex) one
        start = np.zeros(n_items + 1 + n_ann)
        start[n_items + 1 :] = _logit(0.9)
        fits = [False, True] if self.fit_reliability else [False]
        self.n_iter_, self.converged_ = 0, True
        for with_reliability in fits:
            result = minimize(
                _objective,
                start,
                args=(data, self.regularization, self.reliability_prior, with_reliability),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.max_iter, "gtol": self.tol},
            )
            start = result.x
            self.n_iter_ += int(result.nit)
            self.converged_ = self.converged_ and bool(result.success)
        scores = start[:n_items]
        self.scores_ = scores - scores.mean() if n_items else scores
        self.tie_parameter_ = float(np.exp(start[n_items])) if davidson else 0.0
        rho = start[n_items + 1 :]
        self.reliabilities_ = 1.0 / (1.0 + np.exp(-rho)) if self.fit_reliability else np.ones(n_ann)
        log_obs = (target * _safe_log_probs(start, data)).sum(1)
        self.posteriors_ = (
            _posteriors(rho, log_obs, data) if self.fit_reliability else np.ones(len(y))
        )

    # ------------------------------------------------------------------ queries

    def score_of(self, item: Hashable) -> float:
        return float(self.scores_[self._index(item)])

    def ranking(self) -> list[Any]:
        """Item ids from the strongest to the weakest."""
        order = np.argsort(-self.scores_, kind="stable")
        return [self._items[i] for i in order]

    def pair_probabilities(self, a: Hashable, b: Hashable) -> tuple[float, float, float]:
        """``(P(a wins), P(b wins), P(tie))`` for a reliable annotator comparing a with b."""
        ia = np.array([self._index(a)])
        ib = np.array([self._index(b)])
        params = np.append(self.scores_, np.log(self.tie_parameter_ or 1.0))
        pa, pb, pt = np.exp(_log_probs(params, ia, ib, self._davidson))[0]
        return float(pa), float(pb), float(pt)

    def preferences(self) -> list[PairPreference]:
        """One :class:`PairPreference` per distinct compared pair, in order of first comparison."""
        ia, ib = self._pairs
        lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
        keys = lo * len(self.item_ids_) + hi
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        out: list[PairPreference] = []
        for k in np.argsort(first, kind="stable"):
            i = first[k]
            a, b = self._items[ia[i]], self._items[ib[i]]
            pa, pb, pt = self.pair_probabilities(a, b)
            preferred, p = (a, pa) if pa >= pb else (b, pb)
            decisive = pa + pb
            out.append(
                PairPreference(
                    a,
                    b,
                    preferred,
                    p / decisive if decisive > 0 else 0.5,
                    pa,
                    pb,
                    pt,
                    int(counts[k]),
                )
            )
        return out

    def _index(self, item: Hashable) -> int:
        try:
            return self._position[item]
        except KeyError:
            raise KeyError(f"item {item!r} was not compared") from None


def _has(data: Any, name: str) -> bool:
    try:
        return name in data
    except TypeError:
        return False


def _log_probs(params: FloatArray, ia: IntArray, ib: IntArray, davidson: bool) -> FloatArray:
    """(n, 3) log P(a), log P(b), log P(tie) under the Davidson model."""
    sa, sb = params[ia], params[ib]
    st = params[-1] + (sa + sb) / 2.0 if davidson else np.full_like(sa, -np.inf)
    logits = np.column_stack([sa, sb, st])
    return np.asarray(logits - logsumexp(logits, axis=1, keepdims=True), dtype=np.float64)


@dataclass(frozen=True)
class _Data:
    ann: IntArray
    ia: IntArray
    ib: IntArray
    target: FloatArray  # (n, 3) weight of outcome a, b, tie in each comparison
    log_random: FloatArray  # log-probability of each observed outcome for a random clicker
    n_items: int
    n_ann: int
    davidson: bool


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def _safe_log_probs(params: FloatArray, data: _Data) -> FloatArray:
    """Log-probabilities with the impossible outcomes (weight 0) set to 0, not -inf."""
    scores_and_nu = params[: data.n_items + 1]
    log_p = _log_probs(scores_and_nu, data.ia, data.ib, data.davidson)
    return np.where(data.target > 0, log_p, 0.0)


def _posteriors(rho: FloatArray, log_obs: FloatArray, data: _Data) -> FloatArray:
    """P(comparison k was a real judgement | its outcome), the E-step of the mixture."""
    real = -np.logaddexp(0.0, -rho)[data.ann] + log_obs
    fake = -np.logaddexp(0.0, rho)[data.ann] + data.log_random
    return np.asarray(np.exp(real - np.logaddexp(real, fake)), dtype=np.float64)


def _objective(
    params: FloatArray,
    data: _Data,
    lam: float,
    prior: tuple[float, float],
    with_reliability: bool,
) -> tuple[float, FloatArray]:
    """Negative log-posterior of scores, log(nu) and annotator logits, and its gradient."""
    n = data.n_items
    scores, log_nu, rho = params[:n], params[n], params[n + 1 :]
    log_p = _log_probs(params[: n + 1], data.ia, data.ib, data.davidson)
    p = np.exp(log_p)
    t = data.target
    log_obs = (t * np.where(t > 0, log_p, 0.0)).sum(1)
    grad = np.zeros_like(params)
    if with_reliability:
        z = _posteriors(rho, log_obs, data)
        log_r = -np.logaddexp(0.0, -rho)
        log_1mr = -np.logaddexp(0.0, rho)
        ll = float(
            np.logaddexp(log_r[data.ann] + log_obs, log_1mr[data.ann] + data.log_random).sum()
        )
        r = np.exp(log_r)
        alpha, beta = prior
        ll += float(((alpha - 1) * log_r + (beta - 1) * log_1mr).sum())
        # d/d rho of log(r P + (1 - r) q) is z - r; of the Beta prior (a-1)(1-r) - (b-1) r
        grad[n + 1 :] = np.bincount(data.ann, z - r[data.ann], data.n_ann)
        grad[n + 1 :] += (alpha - 1) * (1 - r) - (beta - 1) * r
    else:
        z = np.ones(len(log_obs))
        ll = float(log_obs.sum())
    # d log P / d s_a = [a] + [tie]/2 - (P(a) + P(tie)/2), and symmetrically for b
    ga = z * (t[:, 0] + t[:, 2] / 2 - p[:, 0] - p[:, 2] / 2)
    gb = z * (t[:, 1] + t[:, 2] / 2 - p[:, 1] - p[:, 2] / 2)
    grad[:n] = np.bincount(data.ia, ga, n) + np.bincount(data.ib, gb, n) - lam * scores
    ll -= lam / 2 * float(scores @ scores)
    if data.davidson:
        # a weak N(0, 10^2) prior on log(nu) keeps it finite when (almost) all are ties
        grad[n] = float((z * (t[:, 2] - p[:, 2])).sum()) - log_nu / 100.0
        ll -= log_nu**2 / 200.0
    return -ll, -grad


@dataclass(frozen=True)
class ChoiceResult:
    """The chosen option of one comparison task and the posterior of every option."""

    chosen: Hashable
    probability: float
    probabilities: dict[Hashable, float]


def aggregate_choice(
    votes: Sequence[tuple[Hashable, Hashable]],
    *,
    options: Sequence[Hashable] | None = None,
    reliabilities: Mapping[Hashable, float] | None = None,
    default_reliability: float = 0.7,
) -> ChoiceResult:
    r"""Pick the best of 2+ responses from k annotators' choices (a Scale ``comparison`` task).

    One-coin model: annotator :math:`u` picks the truly best option with probability
    :math:`r_u + (1-r_u)/K` and each other option with probability :math:`(1-r_u)/K`, so with
    a uniform prior

    .. math:: P(c \mid \text{votes}) \propto \prod_u
              \left(\frac{1-r_u}{K} + r_u [v_u = c]\right).

    ``reliabilities`` (e.g. ``BradleyTerry.reliabilities_``) default to
    ``default_reliability``. Ties in the posterior go to the option listed (or voted) first.

    >>> r = aggregate_choice([("ann", "x"), ("bob", "x"), ("cid", "y")])
    >>> r.chosen, round(r.probability, 3)
    ('x', 0.85)
    """
    opts = list(options) if options is not None else list(dict.fromkeys(v for _, v in votes))
    if len(opts) < 2:
        raise ValueError("a comparison needs at least two options")
    index = {o: i for i, o in enumerate(opts)}
    k = len(opts)
    log_post = np.zeros(k)
    for annotator, choice in votes:
        if choice not in index:
            raise ValueError(f"vote {choice!r} is not among the options")
        r = default_reliability if reliabilities is None else reliabilities.get(annotator)
        r = default_reliability if r is None else float(np.clip(r, 0.0, 1.0 - 1e-12))
        lik = np.full(k, (1 - r) / k)
        lik[index[choice]] += r
        log_post += np.log(lik)
    post = np.exp(log_post - logsumexp(log_post))
    best = int(np.argmax(post))
    return ChoiceResult(opts[best], float(post[best]), dict(zip(opts, post.tolist(), strict=True)))
