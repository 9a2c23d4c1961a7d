"""Long (task, worker, label) records → integer-coded arrays that every estimator shares.

Every algorithm in ``steelyard.quality`` works on dense integer codes so that the inner loops
are ``np.bincount`` / ``np.add.at`` over arrays, never Python loops over labels.  String ids
are coded by Apache Arrow (``dictionary_encode`` in C++), which also reads columns straight
from a ``pyarrow.Table`` (``steelyard aggregate`` reads its CSV with Arrow's reader): 10^6
string ids take about 0.05 s, against about 1 s for a Python loop.
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


def _column(data: Any, name: str) -> Any:
    """Column ``name`` of ``data``: a numpy array, or an Arrow array for an Arrow table."""
    column = data[name]
    if _is_arrow(column):
        return column
    return np.asarray(column)


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


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

    ``data`` may be a pandas DataFrame, a ``pyarrow.Table`` or a mapping with columns ``task``,
    ``worker``, ``label`` (and optionally ``weight``), or a ``CodedLabels`` (returned unchanged);
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
    if not (len(tasks) == len(workers) == len(labels)):
        raise ValueError("task, worker and label columns must have the same length")
    task_ids, t_codes = factorize(tasks)
    worker_ids, w_codes = factorize(workers)
    if classes is None:
        class_ids, l_codes = factorize(labels)
    else:
        l_arr = _as_numpy(labels)
        class_ids = np.asarray(classes)
        order = np.argsort(class_ids, kind="stable")
        sorted_classes = class_ids[order]
        pos = np.searchsorted(sorted_classes, l_arr)
        pos = np.clip(pos, 0, len(sorted_classes) - 1)
        if len(l_arr) and not np.all(sorted_classes[pos] == l_arr):
            raise ValueError("a label is not among the given classes")
        l_codes = order[pos]
    w = (
        np.ones(len(t_codes), dtype=np.float64)
        if weights is None
        else _as_numpy(weights).astype(np.float64)
    )
    if len(w) != len(t_codes):
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


def factorize(values: Any) -> tuple[npt.NDArray[Any], IntArray]:
    """``np.unique(values, return_inverse=True)``, several times faster on string ids.

    ``np.unique`` sorts every label's id; long string ids (URLs) make that the slowest step of
    a whole Dawid-Skene fit.  Strings (a numpy or Arrow array of them, no nulls) are coded by
    Arrow's ``dictionary_encode`` and only the distinct ids are sorted (UTF-8 byte order is
    code-point order, numpy's); anything else goes through a dict in one Python pass.  Either
    way the codes, and every result, are the same as with ``np.unique``.
    """
    if _is_arrow(values):
        coded = _arrow_factorize(values)
        if coded is None:  # nulls, or not strings: numpy's way
            return factorize(np.asarray(values.to_pylist()))
        return coded
    flat = np.asarray(values).ravel()
    if flat.dtype.kind in "UO" and len(flat) >= ARROW_MIN:
        coded = _arrow_factorize(flat)
        if coded is not None:
            return coded
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


ARROW_MIN = 1_000
"""Below this many values the dict pass is as fast as handing them to Arrow."""


def _arrow_factorize(values: Any) -> tuple[npt.NDArray[Any], IntArray] | None:
    """Sorted distinct strings and codes by Arrow, or ``None`` for values it should not code
    (mixed types, nulls, non-strings: their order and equality are numpy's business)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.dtype.kind if isinstance(values, np.ndarray) else None
    try:
        arr = values if kind is None else pa.array(values, from_pandas=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or arr.null_count:
        return None
    encoded = arr.dictionary_encode()
    dictionary = encoded.dictionary
    order = np.asarray(pc.array_sort_indices(dictionary), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    distinct = dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)
    if kind == "U":
        distinct = distinct.astype(values.dtype)
    elif kind is None:  # from an Arrow table: plain str ids, like a numpy string column
        distinct = distinct.astype(str) if len(distinct) else np.zeros(0, dtype=str)
    indices = np.asarray(encoded.indices, dtype=np.int64) if len(arr) else np.zeros(0, np.int64)
    return distinct, rank[indices]


def _as_numpy(values: Any) -> npt.NDArray[Any]:
    if _is_arrow(values):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return np.asarray(values)


def _has(data: Any, name: str) -> bool:
    names = getattr(data, "column_names", None)  # an Arrow table
    if names is not None:
        return name in names
    try:
        return name in data
    except TypeError:
        return False
