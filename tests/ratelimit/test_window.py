"""The limiter's decisions in one process (pure: no database, no web)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.ratelimit.window import WINDOW, Check, Counts, window_start

#: Epoch seconds on a window boundary, so examples can place requests in known windows.
T0 = 1_800_000_000 - 1_800_000_000 % WINDOW

# Request times as offsets from T0, in milliseconds over three windows, sorted by the test.
offsets = st.lists(st.integers(0, 3 * WINDOW * 1000 - 1), min_size=1, max_size=400)


def _run(counts: Counts, times: list[float], limit: int, bucket: str = "b") -> list[float]:
    return [t for t in times if counts.admit([Check(bucket, limit)], t).allowed]


@given(offsets, st.integers(1, 60))
@settings(max_examples=200)
def test_never_more_than_the_limit_in_a_window(raw: list[int], limit: int) -> None:
    times = sorted(T0 + ms / 1000 for ms in raw)
    admitted = _run(Counts(), times, limit)
    per_window = Counter(window_start(t) for t in admitted)
    assert max(per_window.values(), default=0) <= limit
    # Over any minute, sliding: at most twice the limit (a full window just before it).
    for i, t in enumerate(admitted):
        inside = sum(1 for u in admitted[i:] if u < t + WINDOW)
        assert inside <= 2 * limit


@given(st.integers(1, 200), st.integers(0, WINDOW * 1000 - 1))
def test_a_quiet_bucket_admits_its_whole_limit(limit: int, start_ms: int) -> None:
    now = T0 + 2 * WINDOW + start_ms / 1000
    admitted = _run(Counts(), [now + i * 1e-6 for i in range(limit + 5)], limit)
    assert len(admitted) == limit


@given(
    offsets,
    st.integers(1, 40),
    st.integers(0, 3 * WINDOW * 1000),
)
@settings(max_examples=200)
def test_retry_after_is_when_a_request_is_admitted_again(
    raw: list[int], limit: int, probe_ms: int
) -> None:
    counts = Counts()
    times = sorted(T0 + ms / 1000 for ms in raw)
    _run(counts, times, limit)
    now = max(times[-1], T0 + probe_ms / 1000)
    verdict = counts.admit([Check("b", limit, record=False)], now)
    if verdict.allowed:
        return
    assert 0 < verdict.retry_after <= 2 * WINDOW
    if verdict.retry_after > 0.01:
        early = now + verdict.retry_after - 0.01
        assert not counts.admit([Check("b", limit, record=False)], early).allowed
    assert counts.admit([Check("b", limit, record=False)], now + verdict.retry_after + 0.01).allowed


def test_a_refused_request_counts_in_no_bucket() -> None:
    counts = Counts()
    now = T0 + 1.0
    assert counts.admit([Check("small", 1)], now).allowed
    for _ in range(5):
        verdict = counts.admit([Check("big", 10), Check("small", 1)], now)
        assert not verdict.allowed and verdict.bucket == "small"
    assert len(_run(counts, [now] * 20, 10, bucket="big")) == 10


def test_the_longest_wait_is_answered() -> None:
    counts = Counts()
    now = T0 + 30.0
    counts.admit([Check("a", 1)], now)
    counts.admit([Check("b", 1)], now - 25)
    verdict = counts.admit([Check("a", 1), Check("b", 1)], now)
    assert not verdict.allowed
    alone_a = counts.admit([Check("a", 1, record=False)], now).retry_after
    alone_b = counts.admit([Check("b", 1, record=False)], now).retry_after
    assert verdict.retry_after == max(alone_a, alone_b)


def test_a_zero_limit_is_no_limit() -> None:
    assert len(_run(Counts(), [T0 + 1.0] * 50, 0)) == 50


def test_counts_in_flight_stay_counted_and_come_back_when_sending_fails() -> None:
    counts = Counts()
    now = T0 + 1.0
    _run(counts, [now] * 3, 5)
    assert counts.take_pending(since=T0 - WINDOW) == {("b", T0): 3}
    assert len(_run(counts, [now] * 5, 5)) == 2  # the 3 being sent still count
    counts.send_failed()
    assert counts.take_pending(since=T0 - WINDOW) == {("b", T0): 5}
    counts.settle({("b", T0): 9}, since=T0 - WINDOW)  # other processes admitted 4 meanwhile
    assert len(_run(counts, [now] * 5, 10)) == 1
    assert counts.take_pending(since=T0 - WINDOW) == {("b", T0): 1}


def test_an_older_total_never_lowers_a_count() -> None:
    counts = Counts()
    counts.observe({("b", T0): 7})
    counts.settle({("b", T0): 4}, since=T0 - WINDOW)
    assert len(_run(counts, [T0 + 1.0] * 10, 10)) == 3


def test_old_windows_are_forgotten() -> None:
    counts = Counts()
    _run(counts, [T0 + 1.0], 5)
    counts.settle({("b", T0): 1}, since=T0 - WINDOW)
    assert counts.buckets(since=T0) == {"b"}
    counts.settle({}, since=T0 + WINDOW)
    assert counts.buckets(since=T0) == set()


def test_the_limiter_knows_nothing_of_the_web() -> None:
    package = Path(__file__).resolve().parents[2] / "src" / "steelyard" / "ratelimit"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top not in {"fastapi", "starlette", "uvicorn", "httpx"}, (path, name)
                assert not name.startswith("steelyard.api"), (path, name)
