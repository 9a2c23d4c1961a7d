"""Inter-annotator agreement: percent agreement, Cohen's and Fleiss' kappa, Krippendorff's alpha.

Input is either a *reliability matrix* (raters x units, ``NaN`` where a rater did not rate a
unit; numeric codes) or a *long table* of (task, worker, label) as a DataFrame or a mapping of
columns, in which case labels of any hashable type are allowed (they are coded; for ordinal,
interval and ratio levels they must be numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Level = Literal["nominal", "ordinal", "interval", "ratio"]

__all__ = [
    "Level",
    "ReliabilityMatrix",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "percent_agreement",
    "reliability_matrix",
    "value_counts",
]


@dataclass(frozen=True)
class ReliabilityMatrix:
    """``codes[r, u]`` is rater r's value for unit u as an index into ``values`` (NaN: none)."""

    codes: FloatArray
    values: npt.NDArray[Any]
    rater_ids: npt.NDArray[Any]
    unit_ids: npt.NDArray[Any]


def _is_long(data: Any) -> bool:
    try:
        return all(k in data for k in ("task", "worker", "label"))
    except TypeError:
        return False


def reliability_matrix(data: Any) -> ReliabilityMatrix:
    """Code a long table or a raters x units array into a :class:`ReliabilityMatrix`."""
    if isinstance(data, ReliabilityMatrix):
        return data
    if _is_long(data):
        tasks, workers = np.asarray(data["task"]), np.asarray(data["worker"])
        labels = np.asarray(data["label"])
        unit_ids, u = np.unique(tasks, return_inverse=True)
        rater_ids, r = np.unique(workers, return_inverse=True)
        values, v = np.unique(labels, return_inverse=True)
        codes = np.full((len(rater_ids), len(unit_ids)), np.nan)
        codes[r.ravel(), u.ravel()] = v.ravel()
        return ReliabilityMatrix(codes, values, rater_ids, unit_ids)
    matrix = np.asarray(data, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError("a reliability matrix must be 2-D (raters x units)")
    present = ~np.isnan(matrix)
    values, inverse = np.unique(matrix[present], return_inverse=True)
    codes = np.full(matrix.shape, np.nan)
    codes[present] = inverse
    return ReliabilityMatrix(codes, values, np.arange(matrix.shape[0]), np.arange(matrix.shape[1]))


def value_counts(data: Any) -> tuple[FloatArray, npt.NDArray[Any]]:
    """Units x values table: how many raters gave each value to each unit, and the values."""
    rm = reliability_matrix(data)
    n_units, n_values = rm.codes.shape[1], len(rm.values)
    present = ~np.isnan(rm.codes)
    unit_idx = np.broadcast_to(np.arange(n_units), rm.codes.shape)[present]
    flat = unit_idx * n_values + rm.codes[present].astype(np.int64)
    counts = np.bincount(flat, minlength=n_units * n_values).astype(np.float64)
    return counts.reshape(n_units, n_values), rm.values


def percent_agreement(data: Any) -> float:
    r"""Mean, over units with two or more ratings, of the share of agreeing rater pairs.

    .. math:: P = \frac1{|U|}\sum_u \frac{\sum_c n_{uc}(n_{uc}-1)}{n_u(n_u-1)}

    >>> percent_agreement([[1, 1, 2], [1, 2, 2]])
    0.6666666666666666
    """
    counts, _ = value_counts(data)
    n = counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return float("nan")
    pairs = (counts[keep] * (counts[keep] - 1)).sum(axis=1) / (n[keep] * (n[keep] - 1))
    return float(pairs.mean())


def cohen_kappa(
    rater_a: Sequence[Any] | npt.NDArray[Any],
    rater_b: Sequence[Any] | npt.NDArray[Any],
    *,
    weights: Literal["linear", "quadratic"] | None = None,
    categories: Sequence[Any] | None = None,
) -> float:
    r"""Cohen's kappa for two raters, optionally weighted for ordered categories.

    .. math:: \kappa = 1 - \frac{\sum_{ij} w_{ij} O_{ij}}{\sum_{ij} w_{ij} E_{ij}},\qquad
              E_{ij} = \frac{O_{i\cdot}O_{\cdot j}}{N}

    with :math:`w_{ij} = [i \ne j]` (unweighted), :math:`|i-j|/(k-1)` (linear) or
    :math:`((i-j)/(k-1))^2` (quadratic), over ``categories`` in the given order (default:
    sorted). Pairs where either rating is missing (None or NaN) are dropped. Cohen, *A
    coefficient of agreement for nominal scales*, 1960; Cohen, *Weighted kappa*, 1968.

    >>> cohen_kappa(["y", "y", "n", "n"], ["y", "n", "n", "n"])
    0.5
    """
    a, b = list(rater_a), list(rater_b)
    if len(a) != len(b):
        raise ValueError("both raters must rate the same units")

    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and np.isnan(v))

    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (missing(x) or missing(y))]
    if not pairs:
        return float("nan")
    cats = list(categories) if categories is not None else sorted({v for p in pairs for v in p})
    index = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    try:
        ia = np.fromiter((index[x] for x, _ in pairs), dtype=np.int64, count=len(pairs))
        ib = np.fromiter((index[y] for _, y in pairs), dtype=np.int64, count=len(pairs))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not among the categories") from exc
    observed = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(1), observed.sum(0)) / len(pairs)
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(np.float64)
    elif weights in ("linear", "quadratic"):
        w = np.abs(i - j) / max(k - 1, 1)
        if weights == "quadratic":
            w = w**2
    else:
        raise ValueError("weights must be None, 'linear' or 'quadratic'")
    denominator = float((w * expected).sum())
    if denominator == 0.0:
        return float("nan")  # a single category used by both: kappa is undefined
    return 1.0 - float((w * observed).sum()) / denominator


def fleiss_kappa(data: Any, *, counts: bool = False) -> float:
    r"""Fleiss' kappa for many raters and nominal categories.

    .. math:: \kappa = \frac{\bar P - \bar P_e}{1 - \bar P_e},\quad
              \bar P = \frac1N\sum_u \frac{\sum_c n_{uc}(n_{uc}-1)}{n_u(n_u-1)},\quad
              \bar P_e = \sum_c p_c^2,\ p_c = \frac{\sum_u n_{uc}}{\sum_u n_u}

    Fleiss, *Measuring nominal scale agreement among many raters*, Psychological Bulletin 76(5),
    1971. ``data`` is a reliability matrix or long table, or with ``counts=True`` a units x
    categories table of rating counts. Fleiss assumed every unit has the same number of
    ratings; when they differ, each unit's agreement uses its own :math:`n_u` and units with
    fewer than two ratings are skipped.

    >>> round(fleiss_kappa([[2, 0], [0, 2], [1, 1]], counts=True), 4)
    0.3333
    """
    table = np.asarray(data, dtype=np.float64) if counts else value_counts(data)[0]
    n = table.sum(axis=1)
    table = table[n >= 2]
    n = n[n >= 2]
    if len(n) == 0:
        return float("nan")
    p_unit = (table * (table - 1)).sum(axis=1) / (n * (n - 1))
    p_cat = table.sum(axis=0) / n.sum()
    p_bar, p_e = float(p_unit.mean()), float((p_cat**2).sum())
    if p_e == 1.0:
        return float("nan")
    return (p_bar - p_e) / (1.0 - p_e)


def _delta2(values: FloatArray, marginals: FloatArray, level: Level) -> FloatArray:
    """Squared difference function of Krippendorff's alpha between every pair of values."""
    c, k = values[:, None], values[None, :]
    if level == "nominal":
        return np.asarray(c != k, dtype=np.float64)
    if level == "interval":
        return np.asarray((c - k) ** 2, dtype=np.float64)
    if level == "ratio":
        total = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(total == 0, 0.0, ((c - k) / np.where(total == 0, 1.0, total)) ** 2)
        return np.asarray(d, dtype=np.float64)
    if level == "ordinal":
        # sum of marginals from c to k inclusive, minus half of the two ends
        cum = np.concatenate(([0.0], np.cumsum(marginals)))
        i, j = np.indices((len(values), len(values)))
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        between = cum[hi + 1] - cum[lo] - (marginals[i] + marginals[j]) / 2.0
        return np.asarray(between**2, dtype=np.float64)
    raise ValueError(f"unknown level {level!r}")


def krippendorff_alpha(data: Any, level: Level = "nominal") -> float:
    r"""Krippendorff's alpha from the coincidence matrix, for any number of raters and gaps.

    .. math:: o_{ck} = \sum_u \frac{\#\{(i,j): i\ne j,\ v_{iu}=c,\ v_{ju}=k\}}{m_u - 1},
              \qquad
              \alpha = 1 - (n-1)\frac{\sum_{ck} o_{ck}\,\delta^2_{ck}}
                                     {\sum_{ck} n_c n_k\,\delta^2_{ck}}

    over units with :math:`m_u \ge 2` values, where :math:`n_c = \sum_k o_{ck}` and
    :math:`n = \sum_c n_c`; :math:`\delta^2` is the nominal, ordinal, interval or ratio
    difference. Krippendorff, *Computing Krippendorff's Alpha-Reliability*, 2011. In matrix
    form :math:`o = N^\top D N - \operatorname{diag}(N^\top D \mathbf 1)` with :math:`N` the
    units x values counts and :math:`D = \operatorname{diag}(1/(m_u-1))`, so the cost is one
    matrix product.

    >>> round(krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 4]], "interval"), 3)
    0.889
    """
    counts, values = value_counts(data)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    if level != "nominal":
        try:
            numeric = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{level} alpha needs numeric values") from exc
    else:
        numeric = np.arange(len(values), dtype=np.float64)
    scaled = counts / (m - 1)[:, None]
    coincidence = counts.T @ scaled
    coincidence[np.diag_indices_from(coincidence)] -= scaled.sum(axis=0)
    marginals = coincidence.sum(axis=1)
    n = float(marginals.sum())
    if n <= 1:
        return float("nan")
    delta2 = _delta2(numeric, marginals, level)
    expected = float(marginals @ delta2 @ marginals)
    if expected == 0.0:
        return float("nan")  # one value throughout: no variation to be reliable about
    return 1.0 - (n - 1) * float((coincidence * delta2).sum()) / expected
