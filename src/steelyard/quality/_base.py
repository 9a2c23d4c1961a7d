"""Shared machinery of the categorical truth-inference estimators.

Every estimator in ``steelyard.quality.categorical`` follows the scikit-learn convention:
parameters are stored by ``__init__`` and nothing else happens there, ``fit(labels, gold=None)``
returns ``self``, learned values end in ``_`` and randomness comes only from ``random_state``.

``labels`` is anything :func:`steelyard.quality._data.encode` accepts: a pandas DataFrame or a
mapping with columns ``task``, ``worker``, ``label`` (optionally ``weight``), or a
:class:`CodedLabels`.  Every row counts as one label, *duplicate (worker, task) rows included*
(as crowd-kit does); give a ``weight`` column to down-weight them instead.

``gold`` is a mapping ``task -> label`` (a dict or a pandas Series), or a table with columns
``task`` and ``label`` (a DataFrame, or any two-column array).  Gold tasks are clamped to their
known answer in every inference step, so they inform the worker estimates; gold tasks without any
label are ignored, and gold classes absent from the labels are added to ``classes_``.

Fitted attributes (numpy arrays, aligned on the codes of ``task_ids_`` / ``worker_ids_`` /
``classes_``; other parts of Steelyard, e.g. adaptive redundancy, rely on them):

``task_ids_`` (n_tasks,), ``worker_ids_`` (n_workers,), ``classes_`` (K,)
    The caller's ids in sorted order; row ``i`` of ``probas_`` is task ``task_ids_[i]``.
``labels_`` (n_tasks,)
    The inferred class value of every task (values of ``classes_``).
``probas_`` (n_tasks, K)
    Posterior probability of each class; rows sum to 1.  Gold tasks are one-hot.
``skills_`` (n_workers,)
    The probability that the worker's label is the true class, under the fitted model (for MV
    and Wawa: agreement with the aggregate).  Every estimator here sets it.
``confusions_`` (n_workers, K, K)
    Where the model has one: ``confusions_[w, k, l] = P(worker w says l | true class k)``;
    row = true class, column = given label, rows sum to 1.
``priors_`` (K,)
    Where the model has one: the class prior.
``n_iter_`` / ``converged_``
    Iterations run and whether the tolerance was reached (1 / True for one-shot methods).

Ties: when several classes have the same (within 1e-12) largest posterior, ``labels_`` takes the
first of them in ``classes_`` order (sorted class values).  ``MajorityVote`` and ``Wawa``, where
ties are common, have a ``tie_break`` parameter (see :func:`decide`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ._data import CodedLabels, FloatArray, IntArray, encode

__all__ = [
    "NO_GOLD",
    "TIE_BREAKS",
    "CategoricalAggregator",
    "ConfusionModel",
    "Design",
    "TieBreak",
    "agreement",
    "check_iter",
    "clamp_gold",
    "col_sum",
    "decide",
    "expected_accuracy",
    "normalize_rows",
    "one_coin_confusions",
    "posterior",
    "prepare",
    "row_max",
    "row_sum",
    "vote_matrix",
]

NO_GOLD = -1
"""Code in the per-task gold array for tasks without a known answer."""

TIE_TOLERANCE = 1e-12


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _gold_pairs(gold: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Split ``gold`` (mapping, Series, DataFrame or 2-column table) into tasks and labels."""
    columns = getattr(gold, "columns", None)
    if columns is not None:  # a DataFrame
        names = list(columns)
        if "task" in names and "label" in names:
            return np.asarray(gold["task"]), np.asarray(gold["label"])
        if len(names) != 2:
            raise ValueError("gold table needs columns task and label")
        return np.asarray(gold[names[0]]), np.asarray(gold[names[1]])
    if isinstance(gold, Mapping) or hasattr(gold, "items"):
        items = list(gold.items())
        return np.asarray([k for k, _ in items]), np.asarray([v for _, v in items])
    table = np.asarray(gold)
    if table.size == 0:
        return np.asarray([]), np.asarray([])
    if table.ndim != 2 or table.shape[1] != 2:
        raise ValueError("gold must be a mapping task -> label or a (task, label) table")
    return table[:, 0], table[:, 1]


def _lookup(sorted_ids: npt.NDArray[Any], values: npt.NDArray[Any], what: str) -> IntArray:
    """Codes of ``values`` in ``sorted_ids``; -1 where absent."""
    if len(sorted_ids) == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    try:
        values = values.astype(sorted_ids.dtype) if values.dtype != sorted_ids.dtype else values
        pos = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
        found = sorted_ids[pos] == values
    except (TypeError, ValueError) as exc:
        raise ValueError(f"gold {what} values are not comparable with the labels' {what}") from exc
    return np.where(found, pos, -1).astype(np.int64)


def prepare(labels: Any, gold: Any = None) -> tuple[CodedLabels, IntArray]:
    """Code ``labels`` and turn ``gold`` into one class code per task (``NO_GOLD`` if unknown)."""
    data = encode(labels)
    if gold is None:
        return data, np.full(data.n_tasks, NO_GOLD, dtype=np.int64)
    g_tasks, g_labels = _gold_pairs(gold)
    if len(g_tasks) and len(data.classes):
        known = _lookup(np.sort(data.classes), g_labels, "label")
        if np.any(known < 0):  # gold classes that no worker used: extend the class set
            data = _with_classes(data, np.union1d(data.classes, g_labels))
    elif len(g_tasks):
        data = _with_classes(data, np.unique(g_labels))
    order = np.argsort(data.classes, kind="stable")
    class_pos = _lookup(data.classes[order], g_labels, "label")
    class_codes = np.where(class_pos >= 0, order[np.maximum(class_pos, 0)], -1)
    task_codes = _lookup(data.task_ids, g_tasks, "task")
    gold_codes = np.full(data.n_tasks, NO_GOLD, dtype=np.int64)
    keep = task_codes >= 0
    gold_codes[task_codes[keep]] = class_codes[keep]
    return data, gold_codes


def _with_classes(data: CodedLabels, classes: npt.NDArray[Any]) -> CodedLabels:
    if len(data.classes):
        remap = _lookup(classes, data.classes, "label")
        new_labels = remap[data.labels]
    else:
        new_labels = data.labels
    return CodedLabels(
        tasks=data.tasks,
        workers=data.workers,
        labels=new_labels,
        weights=data.weights,
        task_ids=data.task_ids,
        worker_ids=data.worker_ids,
        classes=classes,
    )


# --------------------------------------------------------------------------------------------
# numerical helpers shared by the estimators
# --------------------------------------------------------------------------------------------
def vote_matrix(data: CodedLabels) -> FloatArray:
    """(n_tasks, K) weighted number of labels of each class per task."""
    k = data.n_classes
    flat = np.bincount(
        data.tasks * k + data.labels, weights=data.weights, minlength=data.n_tasks * k
    )
    return np.asarray(flat, dtype=np.float64).reshape(data.n_tasks, k)


def row_max(x: FloatArray) -> FloatArray:
    """Maximum of each row.  A loop over the K columns: ``x.max(axis=1)`` with K of 2-5 runs
    tiny inner loops and is 10-20x slower on 10^5 rows."""
    top = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        np.maximum(top, x[:, j], out=top)
    return top


def row_sum(x: FloatArray) -> FloatArray:
    """Sum of each row (fast for few columns, see ``row_max``).  ``einsum``, not a
    matrix-vector product: BLAS threads make ``x @ ones`` 10x slower on a loaded machine
    (55 ms against 6 ms for 10^6 x 5 with two threads on two busy cores)."""
    return np.asarray(np.einsum("ij->i", x), dtype=np.float64)


def col_sum(x: FloatArray) -> FloatArray:
    """Sum of each column (``einsum``, for the reason in ``row_sum``)."""
    return np.asarray(np.einsum("ij->j", x), dtype=np.float64)


def normalize_rows(x: FloatArray) -> FloatArray:
    """Rows scaled to sum to 1; all-zero rows become uniform.  Works in place."""
    s = row_sum(x)
    empty = s <= 0
    if np.any(empty):
        x[empty] = 1.0
        s[empty] = x.shape[1]
    x /= s[:, None]
    return x


def posterior(joint: FloatArray, gold: IntArray) -> tuple[FloatArray, float]:
    """Posterior from joint log-probabilities ``log p(z_t = k, labels of t)``, in place.

    Returns the probabilities (gold rows one-hot) and the log-likelihood of the data,
    ``sum_t log p(labels of t)`` with gold tasks contributing ``log p(z_t = gold, labels of t)``.
    """
    if joint.size == 0:
        return joint, 0.0
    gold_rows = np.flatnonzero(gold >= 0)
    gold_ll = float(joint[gold_rows, gold[gold_rows]].sum()) if len(gold_rows) else 0.0
    top = row_max(joint)
    joint -= top[:, None]
    np.exp(joint, out=joint)
    total = row_sum(joint)
    joint /= total[:, None]
    lse = np.log(total)
    lse += top
    if len(gold_rows):
        lse[gold_rows] = 0.0
    return clamp_gold(joint, gold), float(lse.sum()) + gold_ll


def clamp_gold(probas: FloatArray, gold: IntArray) -> FloatArray:
    """Set the rows of gold tasks to the one-hot of their known class, in place."""
    rows = np.flatnonzero(gold >= 0)
    if len(rows):
        probas[rows] = 0.0
        probas[rows, gold[rows]] = 1.0
    return probas


@dataclass(frozen=True)
class Design:
    """Sparse (task x (worker, label)) count matrix and its transpose, both CSR.

    ``x[t, w*K + l]`` is the weighted number of times worker ``w`` gave label ``l`` to task
    ``t``.  With it a Dawid-Skene E-step is ``x @ log_conf`` and the M-step statistic is
    ``xt @ probas`` -- two sparse products per iteration, no Python loop over labels.
    """

    x: Any
    xt: Any
    n_workers: int
    n_classes: int

    @classmethod
    def build(cls, data: CodedLabels) -> Design:
        k, n_t, n_w = data.n_classes, data.n_tasks, data.n_workers
        cols = data.workers * k + data.labels
        idx = np.int32 if max(n_t, n_w * k) < 2**31 - 1 else np.int64
        rows_i, cols_i = data.tasks.astype(idx), cols.astype(idx)
        x = sp.csr_array((data.weights, (rows_i, cols_i)), shape=(n_t, n_w * k))
        xt = sp.csr_array((data.weights, (cols_i, rows_i)), shape=(n_w * k, n_t))
        return cls(x=x, xt=xt, n_workers=n_w, n_classes=k)

    def loglik(self, log_conf: FloatArray) -> FloatArray:
        """(n_tasks, K) sum over a task's labels of ``log_conf[w, k, l]`` for every class k."""
        w, k = self.n_workers, self.n_classes
        table = np.ascontiguousarray(log_conf.transpose(0, 2, 1)).reshape(w * k, k)
        return np.asarray(self.x @ table, dtype=np.float64)

    def counts(self, probas: FloatArray) -> FloatArray:
        """(n_workers, K, K) expected counts: ``[w, k, l]`` = sum of P(true k) over w's l labels."""
        w, k = self.n_workers, self.n_classes
        stat = np.asarray(self.xt @ probas, dtype=np.float64).reshape(w, k, k)
        return np.ascontiguousarray(stat.transpose(0, 2, 1))

    def worker_label_totals(self) -> FloatArray:
        """(n_workers, K) weighted number of labels of each class per worker."""
        return np.asarray(self.x.sum(axis=0), dtype=np.float64).reshape(
            self.n_workers, self.n_classes
        )


def one_coin_confusions(skills: FloatArray, n_classes: int) -> FloatArray:
    """(n_workers, K, K) matrices with ``skills`` on the diagonal, the rest spread evenly."""
    k = n_classes
    off = (1.0 - skills) / max(k - 1, 1)
    conf = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
    diag = np.arange(k)
    conf[:, diag, diag] = skills[:, None]
    return conf


def expected_accuracy(confusions: FloatArray, priors: FloatArray) -> FloatArray:
    """Per worker ``sum_k priors[k] * confusions[w, k, k]``."""
    return np.asarray(np.einsum("wkk,k->w", confusions, priors), dtype=np.float64)


def agreement(data: CodedLabels, answers: IntArray) -> FloatArray:
    """Weighted fraction of each worker's labels equal to ``answers[task]``."""
    hit = (data.labels == answers[data.tasks]).astype(np.float64) * data.weights
    num = np.bincount(data.workers, weights=hit, minlength=data.n_workers)
    den = np.bincount(data.workers, weights=data.weights, minlength=data.n_workers)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


# --------------------------------------------------------------------------------------------
# the estimator base class
# --------------------------------------------------------------------------------------------
def _uniform(k: int) -> FloatArray:
    return np.full(k, 1.0 / k) if k else np.zeros(0)


class ConfusionModel:
    """Mixin for models with ``confusions_`` and ``priors_``: their empty-input values."""

    confusions_: FloatArray
    priors_: FloatArray

    def _empty(self, n_classes: int) -> None:
        self.confusions_ = np.zeros((0, n_classes, n_classes))
        self.priors_ = _uniform(n_classes)


class CategoricalAggregator:
    """Base of every categorical truth-inference estimator (see the module docstring).

    Subclasses implement ``_fit(data, gold) -> probas`` and set their model attributes
    (``skills_``, ``confusions_``, ``priors_``...) there; this class codes the input, handles
    gold, turns ``probas_`` into ``labels_`` with the documented tie rule and offers
    ``fit_predict``, ``fit_predict_proba``, ``get_params`` and ``set_params``.
    """

    task_ids_: npt.NDArray[Any]
    worker_ids_: npt.NDArray[Any]
    classes_: npt.NDArray[Any]
    labels_: npt.NDArray[Any]
    probas_: FloatArray
    skills_: FloatArray
    n_iter_: int
    converged_: bool

    def fit(self, labels: Any, gold: Any = None) -> Self:
        """Infer the true class of every task from ``labels`` (and known ``gold`` answers)."""
        data, gold_codes = prepare(labels, gold)
        if np.any(~np.isfinite(data.weights)) or np.any(data.weights < 0):
            raise ValueError("weights must be finite and non-negative")
        self.task_ids_ = data.task_ids
        self.worker_ids_ = data.worker_ids
        self.classes_ = data.classes
        self.n_iter_, self.converged_ = 0, True
        if len(data.tasks) == 0:  # nothing to infer: empty, well-shaped results
            k = data.n_classes
            self.probas_ = np.zeros((0, k))
            self.labels_ = data.classes[:0]
            self.skills_ = np.zeros(0)
            self._empty(k)
            return self
        probas = self._fit(data, gold_codes)
        clamp_gold(probas, gold_codes)
        self.probas_ = probas
        codes = self._decide(probas, data)
        self.labels_ = data.classes[codes] if len(codes) else data.classes[:0]
        return self

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        raise NotImplementedError

    def _decide(self, probas: FloatArray, data: CodedLabels) -> IntArray:
        return decide(probas, data)

    def _empty(self, n_classes: int) -> None:
        """Set the model's own attributes for input without labels (override as needed)."""

    def fit_predict(self, labels: Any, gold: Any = None) -> npt.NDArray[Any]:
        """``fit`` and return ``labels_``."""
        return self.fit(labels, gold).labels_

    def fit_predict_proba(self, labels: Any, gold: Any = None) -> FloatArray:
        """``fit`` and return ``probas_``."""
        return self.fit(labels, gold).probas_

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` parameters of this estimator."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change ``__init__`` parameters; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


TieBreak = Literal["least_common", "most_common", "order"]
TIE_BREAKS: tuple[str, ...] = ("least_common", "most_common", "order")


def decide(probas: FloatArray, data: CodedLabels, tie_break: str = "order") -> IntArray:
    """Class code per task: the arg-max of ``probas`` with a deterministic tie rule.

    Classes whose probability is within 1e-12 of the row maximum are tied.  ``"order"`` takes
    the first tied class in ``classes_`` order; ``"least_common"`` / ``"most_common"`` take the
    tied class with the fewest / most labels overall (weighted), then class order.
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}")
    if probas.size == 0:
        return np.zeros(probas.shape[0], dtype=np.int64)
    k = probas.shape[1]
    rank = np.arange(k)
    if tie_break != "order":
        totals = np.bincount(data.labels, weights=data.weights, minlength=k)
        key = totals if tie_break == "least_common" else -totals
        rank = np.empty(k, dtype=np.int64)
        rank[np.argsort(key, kind="stable")] = np.arange(k)
    tied = probas >= (row_max(probas) - TIE_TOLERANCE)[:, None]
    return np.asarray(np.argmin(np.where(tied, rank[None, :], k), axis=1), dtype=np.int64)


def check_iter(n_iter: int, tol: float) -> None:
    """Validate the usual ``n_iter`` / ``tol`` parameters."""
    if n_iter < 0:
        raise ValueError("n_iter must be >= 0")
    if not tol >= 0:
        raise ValueError("tol must be >= 0")
