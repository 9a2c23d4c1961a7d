"""What the queue benchmark's workers saw, and what the database kept: double hand-outs,
redundancy actually applied, gold served.

A **double hand-out** is either the same task leased to the same worker twice (two different
assignments), or more leases open on one task at the same moment than the task needs (k).
Both are looked for twice: in the answers the workers got (a lease is certainly open from
the moment its ``next`` answer arrived until its ``submit`` was sent) and in the rows the
server kept (``assignments`` with the server's own times).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: ``(worker, sent, answered, status, assignment_id, task_id)``, times from ``perf_counter``.
NextRecord = tuple[int, float, float, int, str | None, str | None]
#: ``(worker, sent, answered, status, assignment_id)``.
SubmitRecord = tuple[int, float, float, int, str]


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (touching ends do not overlap)."""
    events = []
    for start, end in intervals:
        if end > start:
            events.append((start, 1))
            events.append((end, -1))
    events.sort()  # at equal times -1 sorts first: an end and a start do not overlap
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


@dataclass
class Doubles:
    #: (worker, task) pairs with more than one assignment.
    same_worker: int
    #: Tasks with more leases open at once than k.
    over_k: int

    @property
    def total(self) -> int:
        return self.same_worker + self.over_k


def client_doubles(
    nexts: list[NextRecord], submits: list[SubmitRecord], k: int, end: float
) -> Doubles:
    """Double hand-outs as the workers saw them."""
    by_pair: dict[tuple[int, str], set[str]] = defaultdict(set)
    opened: dict[str, tuple[str, float]] = {}
    for worker, _sent, answered, status, assignment, task in nexts:
        if status != 200 or assignment is None or task is None:
            continue
        by_pair[(worker, task)].add(assignment)
        # A worker still holding a lease is handed the same assignment again: keep the first.
        opened.setdefault(assignment, (task, answered))
    closed: dict[str, float] = {}
    for _worker, sent, _answered, _status, assignment in submits:
        closed.setdefault(assignment, sent)
    per_task: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for assignment, (task, start) in opened.items():
        per_task[task].append((start, closed.get(assignment, end)))
    return Doubles(
        same_worker=sum(1 for ids in by_pair.values() if len(ids) > 1),
        over_k=sum(1 for spans in per_task.values() if max_overlap(spans) > k),
    )


@dataclass
class Stored:
    """What the database holds after a run, for the tasks the run touched."""

    labels: int
    completed: int
    #: Labels per completed task: {number of labels: tasks}.
    labels_per_completed: dict[int, int]
    #: Labels per pending task that has some.
    labels_per_pending: dict[int, int]
    doubles: Doubles
    #: Tasks with more labels than k.
    over_labeled: int

    @property
    def effective_k(self) -> int | None:
        """Labels a task took to complete (the most common count), None if none completed."""
        if not self.labels_per_completed:
            return None
        return max(self.labels_per_completed.items(), key=lambda kv: (kv[1], kv[0]))[0]


def stored(db_url: str, org_id: str, k: int) -> Stored:
    """Read back the run's assignments and labels (after the server stopped)."""
    from sqlalchemy import func, select

    from steelyard.db.engine import Database
    from steelyard.tasks.models import Task
    from steelyard.workflow.models import Assignment, Label

    db = Database(db_url)
    try:
        with db.unit_of_work(write=False) as s:
            rows = s.execute(
                select(
                    Assignment.task_seq,
                    Assignment.user_id,
                    Assignment.status,
                    Assignment.started_at,
                    Assignment.submitted_at,
                    Assignment.expires_at,
                ).where(Assignment.org_id == org_id)
            ).all()
            labels = s.execute(
                select(Label.task_seq, Task.status, func.count())
                .join(Task, Task.seq == Label.task_seq)
                .where(Label.org_id == org_id)
                .group_by(Label.task_seq, Task.status)
            ).all()
            twice = s.scalar(
                select(func.count()).select_from(
                    select(Label.task_seq, Label.user_id)
                    .where(Label.org_id == org_id)
                    .group_by(Label.task_seq, Label.user_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
    finally:
        db.dispose()
    return summarize(rows, labels, int(twice or 0), k)


def summarize(
    assignments: Sequence[Any], labels: Sequence[Any], labeled_twice: int, k: int
) -> Stored:
    """``k`` is what the project asked for; the check uses the k the server applied (labels
    per completed task) when any task completed."""
    completed: Counter[int] = Counter()
    pending: Counter[int] = Counter()
    for _seq, status, n in labels:
        (completed if status == "completed" else pending)[int(n)] += 1
    if completed:
        k = max(completed.items(), key=lambda kv: (kv[1], kv[0]))[0]
    per_pair = Counter((r.task_seq, r.user_id) for r in assignments)
    spans: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for r in assignments:
        # A lease ends when its label is in, or when it runs out; one released or expired
        # early ended at a time the table does not keep, so it is left out (never overcounted).
        if r.submitted_at is not None:
            spans[r.task_seq].append((r.started_at, r.submitted_at))
        elif r.status == "active":
            spans[r.task_seq].append((r.started_at, r.expires_at))
    over_k = sum(
        1 for s in spans.values() if max_overlap((a.timestamp(), b.timestamp()) for a, b in s) > k
    )
    return Stored(
        labels=sum(int(n) for *_, n in labels),
        completed=sum(completed.values()),
        labels_per_completed=dict(sorted(completed.items())),
        labels_per_pending=dict(sorted(pending.items())),
        doubles=Doubles(
            same_worker=max(sum(1 for n in per_pair.values() if n > 1), labeled_twice),
            over_k=over_k,
        ),
        over_labeled=sum(n for c, n in (completed + pending).items() if c > k),
    )


def not_customer_tasks(db_url: str, org_id: str, served: set[str]) -> int:
    """How many of the served task ids are no customer task: gold (or training) whatever ids
    the engine gives what it serves from ``quality_tasks``."""
    from sqlalchemy import select

    from steelyard.db.engine import Database
    from steelyard.tasks.models import Task

    ids = sorted(served)
    found = 0
    db = Database(db_url)
    try:
        with db.unit_of_work(write=False) as s:
            for i in range(0, len(ids), 1000):
                chunk = ids[i : i + 1000]
                found += len(
                    s.scalars(
                        select(Task.task_id).where(Task.org_id == org_id, Task.task_id.in_(chunk))
                    ).all()
                )
    finally:
        db.dispose()
    return len(ids) - found


def gold_leases(db_url: str, org_id: str) -> list[int]:
    """[gold, live] leases the server counted for the organization's workers in projects with
    a gold rate (``gold_counts``): what decides the share it serves."""
    from sqlalchemy import func, select

    from steelyard.db.engine import Database
    from steelyard.workflow.models import GoldCount

    db = Database(db_url)
    try:
        with db.unit_of_work(write=False) as s:
            gold, live = s.execute(
                select(func.sum(GoldCount.gold_served), func.sum(GoldCount.live_served)).where(
                    GoldCount.org_id == org_id
                )
            ).one()
    finally:
        db.dispose()
    return [int(gold or 0), int(live or 0)]
