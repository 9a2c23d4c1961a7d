"""Coding of ids: the Arrow path gives exactly ``np.unique``'s codes, from numpy or Arrow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.quality._data import ARROW_MIN, encode, factorize

# no NUL: numpy strings drop trailing NULs, so no coding could match np.unique there
ids = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=6
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ids, min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_arrow_codes_equal_numpy_unique(pool: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    # above ARROW_MIN so that the numpy input takes the Arrow path too
    values = np.asarray([pool[i] for i in rng.integers(0, len(pool), ARROW_MIN + 5)])
    want_ids, want_codes = np.unique(values, return_inverse=True)
    for given_values in (values, values.astype(object), pa.array(values.tolist())):
        got_ids, got_codes = factorize(given_values)
        assert got_ids.tolist() == want_ids.tolist()
        assert got_codes.tolist() == want_codes.ravel().tolist()


def test_chunked_arrow_column_and_table_give_the_numpy_coding() -> None:
    rng = np.random.default_rng(3)
    tasks = np.char.add("t", rng.integers(0, 300, 5000).astype(str))
    workers = np.char.add("w", rng.integers(0, 40, 5000).astype(str))
    labels = np.asarray(["b", "a", "c"])[rng.integers(0, 3, 5000)]
    table = pa.Table.from_batches(
        pa.table({"task": tasks, "worker": workers, "label": labels}).to_batches(max_chunksize=777)
    )
    assert table["task"].num_chunks > 1
    a = encode(table)
    b = encode({"task": tasks.tolist(), "worker": workers.tolist(), "label": labels.tolist()})
    for name in ("tasks", "workers", "labels", "task_ids", "worker_ids", "classes"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    assert a.task_ids.dtype.kind == "U"


@pytest.mark.parametrize(
    "values",
    [
        np.asarray([3, 1, 2.5] * 500, dtype=object),  # numbers in an object array
        np.asarray([b"a", b"c", b"b"] * 500, dtype=object),  # bytes
        np.arange(3000) % 7,
    ],
)
def test_values_arrow_should_not_code_fall_back(values: np.ndarray) -> None:
    got_ids, got_codes = factorize(values)
    assert got_ids[got_codes].tolist() == values.tolist()
    assert len(got_ids) == len(set(values.tolist()))


@pytest.mark.parametrize("bad", [[3, "a"], ["a", None]])
def test_ids_that_do_not_sort_together_raise_as_with_numpy(bad: list[object]) -> None:
    values = np.asarray(bad * 1000, dtype=object)
    with pytest.raises(TypeError):
        np.unique(values)
    with pytest.raises(TypeError):
        factorize(values)


def test_arrow_column_with_nulls_is_coded_like_python_values() -> None:
    arr = pa.array(["b", "a", "b"])
    ids_, codes = factorize(arr)
    assert ids_.tolist() == ["a", "b"] and codes.tolist() == [1, 0, 1]
    with pytest.raises(TypeError):  # None and str do not sort together, as with numpy
        factorize(pa.array(["b", None, "a"]))
