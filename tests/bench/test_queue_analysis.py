"""The queue benchmark's double hand-out detector finds what it must and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from queue_analysis import NextRecord, SubmitRecord, client_doubles, max_overlap, summarize


def test_max_overlap_counts_open_intervals_and_not_touching_ends() -> None:
    assert max_overlap([]) == 0
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1
    assert max_overlap([(0, 3), (1, 2), (1.5, 4)]) == 3
    assert max_overlap([(0, 1), (0.5, 0.5)]) == 1  # an empty interval is never open


def _next(worker: int, t: float, assignment: str, task: str) -> NextRecord:
    return (worker, t - 0.01, t, 200, assignment, task)


def _submit(worker: int, t: float, assignment: str) -> SubmitRecord:
    return (worker, t, t + 0.01, 200, assignment)


def test_sequential_leases_are_not_doubles() -> None:
    nexts = [_next(0, 1.0, "a1", "t1"), _next(1, 2.5, "a2", "t1"), _next(0, 3.0, "a3", "t2")]
    submits = [_submit(0, 2.0, "a1"), _submit(1, 3.5, "a2"), _submit(0, 4.0, "a3")]
    seen = client_doubles(nexts, submits, k=1, end=10.0)
    assert (seen.same_worker, seen.over_k, seen.total) == (0, 0, 0)


def test_a_lease_handed_out_again_while_open_is_a_double() -> None:
    nexts = [_next(0, 1.0, "a1", "t1"), _next(1, 1.5, "a2", "t1")]
    submits = [_submit(0, 2.0, "a1")]  # a2 never submitted: open until the end
    seen = client_doubles(nexts, submits, k=1, end=10.0)
    assert (seen.same_worker, seen.over_k) == (0, 1)
    # With k = 2 two open leases are what the task needs.
    assert client_doubles(nexts, submits, k=2, end=10.0).total == 0


def test_the_same_task_twice_to_one_worker_is_a_double_even_if_sequential() -> None:
    nexts = [_next(3, 1.0, "a1", "t1"), _next(3, 5.0, "a2", "t1")]
    submits = [_submit(3, 2.0, "a1"), _submit(3, 6.0, "a2")]
    seen = client_doubles(nexts, submits, k=3, end=10.0)
    assert (seen.same_worker, seen.over_k) == (1, 0)


def test_the_same_assignment_handed_back_is_not_a_double() -> None:
    # A worker still holding a lease gets it back from next.
    nexts = [_next(0, 1.0, "a1", "t1"), _next(0, 1.2, "a1", "t1")]
    assert client_doubles(nexts, [_submit(0, 2.0, "a1")], k=1, end=10.0).total == 0


def _assignment(task: int, user: str, start: float, end: float | None, status: str) -> object:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return SimpleNamespace(
        task_seq=task,
        user_id=user,
        status=status,
        started_at=t0 + timedelta(seconds=start),
        submitted_at=t0 + timedelta(seconds=end) if end is not None else None,
        expires_at=t0 + timedelta(seconds=start + 600),
    )


def test_stored_rows_give_k_and_doubles() -> None:
    # k = 1 applied (every completed task has one label); task 2 was leased twice at once.
    assignments = [
        _assignment(1, "u1", 0, 1, "submitted"),
        _assignment(2, "u1", 0, 2, "submitted"),
        _assignment(2, "u2", 1, None, "active"),
        _assignment(3, "u3", 0, 1, "submitted"),
        _assignment(3, "u3", 2, 3, "submitted"),
    ]
    labels = [(1, "completed", 1), (2, "completed", 1), (3, "completed", 2)]
    db = summarize(assignments, labels, labeled_twice=1, k=3)
    assert db.effective_k == 1
    assert db.labels == 4 and db.completed == 3
    assert db.labels_per_completed == {1: 2, 2: 1}
    assert (db.doubles.same_worker, db.doubles.over_k) == (1, 1)
    assert db.over_labeled == 1


def test_no_completed_task_keeps_the_asked_k() -> None:
    assignments = [_assignment(1, f"u{i}", 0, None, "active") for i in range(3)]
    db = summarize(assignments, [(1, "pending", 2)], labeled_twice=0, k=3)
    assert db.effective_k is None
    assert db.doubles.total == 0 and db.over_labeled == 0
    assert summarize(assignments, [], labeled_twice=0, k=2).doubles.over_k == 1
