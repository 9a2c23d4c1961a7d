"""Long (task, worker, label) records → integer-coded arrays that every estimator shares.

Every algorithm in ``steelyard.quality`` works on dense integer codes so that the inner loops
are ``np.bincount`` / ``np.add.at`` over arrays, never Python loops over labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CodedLabels:
    """Labels as codes. ``tasks[i]``, ``workers[i]``, ``labels[i]`` describe the i-th label.

    ``task_ids``, ``worker_ids`` and ``classes`` map codes back to the caller's values; they
    are sorted (``np.unique`` order), which makes results independent of row order.
    ``weights`` is one float per label (1.0 unless the caller gave weights).
    """

    tasks: IntArray
    workers: IntArray
    labels: IntArray
    weights: FloatArray
    task_ids: npt.NDArray[Any]
    worker_ids: npt.NDArray[Any]
    classes: npt.NDArray[Any]

    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _column(data: Any, name: str) -> npt.NDArray[Any]:
    return np.asarray(data[name])


def encode(
    data: Any = None,
    *,
    tasks: Sequence[Any] | npt.NDArray[Any] | None = None,
    workers: Sequence[Any] | npt.NDArray[Any] | None = None,
    labels: Sequence[Any] | npt.NDArray[Any] | None = None,
    weights: Sequence[float] | npt.NDArray[Any] | None = None,
    classes: Sequence[Any] | npt.NDArray[Any] | None = None,
) -> CodedLabels:
    """Code a long table of labels.

    ``data`` may be a pandas DataFrame or a mapping with columns ``task``, ``worker``,
    ``label`` (and optionally ``weight``), or a ``CodedLabels`` (returned unchanged);
    alternatively pass the columns as keyword arrays. ``classes`` fixes the label set (and its
    order) when some classes may be absent from the labels, e.g. gold-only classes.
    """
    if isinstance(data, CodedLabels):
        return data
    if data is not None:
        tasks = _column(data, "task")
        workers = _column(data, "worker")
        labels = _column(data, "label")
        if weights is None and _has(data, "weight"):
            weights = _column(data, "weight")
    if tasks is None or workers is None or labels is None:
        raise ValueError("need task, worker and label columns")
    t_arr, w_arr, l_arr = np.asarray(tasks), np.asarray(workers), np.asarray(labels)
    if not (len(t_arr) == len(w_arr) == len(l_arr)):
        raise ValueError("task, worker and label columns must have the same length")
    task_ids, t_codes = factorize(t_arr)
    worker_ids, w_codes = factorize(w_arr)
    if classes is None:
        class_ids, l_codes = factorize(l_arr)
    else:
        class_ids = np.asarray(classes)
        order = np.argsort(class_ids, kind="stable")
        sorted_classes = class_ids[order]
        pos = np.searchsorted(sorted_classes, l_arr)
        pos = np.clip(pos, 0, len(sorted_classes) - 1)
        if len(l_arr) and not np.all(sorted_classes[pos] == l_arr):
            raise ValueError("a label is not among the given classes")
        l_codes = order[pos]
    w = (
        np.ones(len(t_arr), dtype=np.float64)
        if weights is None
        else np.asarray(weights, dtype=np.float64)
    )
    if len(w) != len(t_arr):
        raise ValueError("weights must have one value per label")
    return CodedLabels(
        tasks=t_codes.astype(np.int64).ravel(),
        workers=w_codes.astype(np.int64).ravel(),
        labels=np.asarray(l_codes, dtype=np.int64).ravel(),
        weights=w,
        task_ids=task_ids,
        worker_ids=worker_ids,
        classes=class_ids,
    )


def factorize(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], IntArray]:
    """``np.unique(values, return_inverse=True)``, several times faster on string ids.

    ``np.unique`` sorts every label's id; long string ids (URLs) make that the slowest step of
    a whole Dawid-Skene fit. A dict finds the distinct ids in one pass and only those are
    sorted, so the codes, and every result, are the same as with ``np.unique``.
    """
    flat = values.ravel()
    index: dict[Any, int] = {}
    first = np.fromiter(
        (index.setdefault(v, len(index)) for v in flat.tolist()), dtype=np.int64, count=len(flat)
    )
    distinct = np.empty(len(index), dtype=flat.dtype)
    distinct[:] = list(index)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[first].astype(np.int64)


def _has(data: Any, name: str) -> bool:
    try:
        return name in data
    except TypeError:
        return False
