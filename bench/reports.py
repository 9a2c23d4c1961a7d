"""How long the native reports take on a large project (service calls, no HTTP).

    PYTHONPATH=src python bench/reports.py [--tasks 1000000] [--url sqlite:///...]

Fills one categorization project straight in the database: ``--tasks`` tasks over 100
batches (a third completed), a label by one of ``--workers`` workers on every third task, and
two more on the newest ``--agreed`` tasks so that agreement has pairs; the ``task_counts``
rows as the services would have kept them. Then times each report (median of 5) and prints a
table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.projects import service as projects
from steelyard.tasks.models import Task, TaskCount
from steelyard.workflow import agreement_report, reports
from steelyard.workflow.models import Assignment, Label

CATEGORIES = ["positive", "negative", "neutral"]
CHUNK = 20_000


def fill(db: Database, n: int, n_workers: int, agreed: int) -> tuple[Actor, str, str]:
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"bench-{new_id()}").org
        actor = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        worker_ids = [
            accounts.create_user(
                s,
                org_id=org.id,
                email=f"w{i}-{org.id}@bench.local",
                password_hash=None,
                role="annotator",
            ).id
            for i in range(n_workers)
        ]
        params = {"categories": CATEGORIES}
        project = projects.create_project(
            s, actor, {"name": "bench", "type": "categorization", "params": params}, now
        )
        batches = [
            projects.create_batch(s, actor, {"project": "bench", "name": f"b{i}"}, now).id
            for i in range(100)
        ]
    counts: dict[tuple[str, str], int] = {}
    t0 = time.perf_counter()
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(n, start + CHUNK)):
            status = "completed" if i % 3 == 0 else "pending"
            batch = batches[i % 100]
            counts[(batch, status)] = counts.get((batch, status), 0) + 1
            rows.append(
                {
                    "task_id": new_id(),
                    "org_id": org.id,
                    "is_test": False,
                    "project_id": project.id,
                    "batch_id": batch,
                    "type": "categorization",
                    "status": status,
                    "params": {"attachment": f"text {i}", **params},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with db.unit_of_work() as s:
            s.execute(insert(Task), rows)
        print(f"\r  {start + len(rows):,} tasks ({time.perf_counter() - t0:.0f} s)", end="")
    print()
    with db.unit_of_work() as s:
        s.execute(
            insert(TaskCount),
            [
                {
                    "org_id": org.id,
                    "is_test": False,
                    "project_id": project.id,
                    "batch_id": batch,
                    "type": "categorization",
                    "status": status,
                    "n": count,
                }
                for (batch, status), count in counts.items()
            ],
        )
        seqs = list(s.scalars(select(Task.seq).where(Task.org_id == org.id).order_by(Task.seq)))
        newest_task = s.scalar(select(Task.task_id).where(Task.seq == seqs[-1]))
    labeled = seqs[::3]
    extra = seqs[-agreed:] if agreed else []
    plan = [(seq, 0) for seq in labeled] + [(seq, r) for seq in extra for r in (1, 2)]
    for start in range(0, len(plan), CHUNK):
        assignments, labels = [], []
        for seq, r in plan[start : start + CHUNK]:
            worker = worker_ids[(seq + r * 7) % n_workers]
            aid = new_id()
            assignments.append(
                {
                    "id": aid,
                    "org_id": org.id,
                    "task_seq": seq,
                    "user_id": worker,
                    "status": "submitted",
                    "started_at": now - timedelta(seconds=30),
                    "expires_at": now + timedelta(seconds=570),
                    "submitted_at": now,
                    "active_seconds": 30.0,
                }
            )
            labels.append(
                {
                    "id": new_id(),
                    "org_id": org.id,
                    "task_seq": seq,
                    "assignment_id": aid,
                    "user_id": worker,
                    "response": {"category": CATEGORIES[(seq + r) % 3 if r else seq % 3]},
                    "created_at": now,
                }
            )
        with db.unit_of_work() as s:
            s.execute(insert(Assignment), assignments)
            s.execute(insert(Label), labels)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    with db.unit_of_work(write=False) as s:
        n_labels = s.scalar(select(func.count()).select_from(Label).where(Label.org_id == org.id))
    print(f"  {n:,} tasks, {n_labels:,} labels, {n_workers} workers")
    return actor, "bench", str(newest_task)


def timed(fn: Callable[[], Any], rounds: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--agreed", type=int, default=60_000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'reports.db'}"
    db = Database(url)
    upgrade(db.engine)
    actor, name, task_id = fill(db, args.tasks, args.workers, args.agreed)

    def read(fn: Callable[..., Any], *a: Any) -> Callable[[], Any]:
        def run() -> Any:
            with db.unit_of_work(write=False) as s:
                return fn(s, actor, *a)

        return run

    def agreement() -> Any:
        with db.unit_of_work(write=False) as s:
            sample = agreement_report.read_labels(s, actor, name)
        return agreement_report.compute(sample)

    rows = [
        ("progress", read(reports.progress, name)),
        ("task labels", read(reports.task_labels, task_id)),
        ("worker table", read(reports.worker_table, name, datetime.now(UTC))),
        ("agreement (read + compute)", agreement),
    ]
    print(f"\n{db.engine.dialect.name}, {args.tasks:,} tasks")
    print(f"{'report':<28} {'median ms':>10}")
    for label, fn in rows:
        ms, result = timed(fn)
        print(f"{label:<28} {ms:>10.1f}", file=sys.stdout)
        if label.startswith("agreement"):
            (q,) = result.questions
            print(
                f"  {result.labels:,} labels (truncated {result.truncated}), "
                f"alpha {q.krippendorff_alpha}, fleiss {q.fleiss_kappa}"
            )
    db.dispose()


if __name__ == "__main__":
    main()
