"""How long closing a pay period takes (service calls, no HTTP), and its peak memory.

    PYTHONPATH=src python -m bench.pay [--labels 1000000] [--workers 10000] [--url sqlite:///...]

Fills one paid categorization project straight in the database: ``--labels`` tasks, each with
one submitted label by one of ``--workers`` workers (30 s of active time at 10 cents: below the
15.00 floor, so every worker is topped up). Then times the sweep's read (``pending``), its
write (``post``), and the close (figures and top-ups), and prints a table.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.config import load_settings
from steelyard.db.base import new_id
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.pay import rules
from steelyard.pay.ledger import org_pay, post
from steelyard.pay.periods import close_period
from steelyard.pay.sweep import pending
from steelyard.projects import service as projects
from steelyard.tasks.models import Task
from steelyard.workflow.models import Assignment, Label

CHUNK = 20_000


def fill(db: Database, n: int, n_workers: int, when: datetime) -> str:
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"bench-{new_id()}").org
        actor = Actor(org_id=org.id, is_test=False, kind="api_key", role="admin")
        workers = [
            accounts.create_user(
                s,
                org_id=org.id,
                email=f"w{i}-{org.id}@bench.local",
                password_hash=None,
                role="annotator",
            ).id
            for i in range(n_workers)
        ]
        params = {"categories": ["a", "b"], "pay": {"piece_rate_minor": 10, "currency": "USD"}}
        body = {"name": "bench", "type": "categorization", "params": params}
        project = projects.create_project(s, actor, body, when - timedelta(days=1))
    t0 = time.perf_counter()
    for start in range(0, n, CHUNK):
        size = min(n, start + CHUNK) - start
        with db.unit_of_work() as s:
            seqs = s.scalars(
                insert(Task).returning(Task.seq),
                [
                    {
                        "task_id": new_id(),
                        "org_id": org.id,
                        "is_test": False,
                        "project_id": project.id,
                        "type": "categorization",
                        "status": "completed",
                        "params": {"attachment": "x"},
                        "created_at": when,
                        "updated_at": when,
                    }
                    for _ in range(size)
                ],
            ).all()
            assignments, labels = [], []
            for k, seq in enumerate(seqs):
                worker = workers[(start + k) % n_workers]
                aid = new_id()
                assignments.append(
                    {
                        "id": aid,
                        "org_id": org.id,
                        "task_seq": seq,
                        "user_id": worker,
                        "status": "submitted",
                        "started_at": when - timedelta(seconds=30),
                        "expires_at": when + timedelta(seconds=570),
                        "submitted_at": when,
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
                        "response": {"category": "a"},
                        "created_at": when,
                    }
                )
            s.execute(insert(Assignment), assignments)
            s.execute(insert(Label), labels)
        print(f"\r  {start + size:,} labels ({time.perf_counter() - t0:.0f} s)", end="")
    print()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return org.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.url or f"sqlite:///{tmp / 'pay.db'}"
    settings = load_settings(data_dir=tmp, database_url=url)
    db = Database(url)
    upgrade(db.engine)
    period = "2026-W10"
    when = rules.week_bounds(period)[0] + timedelta(days=2)
    org_id = fill(db, args.labels, args.workers, when)
    now = datetime.now(UTC)
    rows = []
    t = time.perf_counter()
    with db.unit_of_work(write=False) as s:
        entries = pending(s, org_id, org_pay(s, org_id, settings), now)
    rows.append(("sweep: read the unpaid work", time.perf_counter() - t))
    t = time.perf_counter()
    with db.unit_of_work() as s:
        post(s, org_id, entries, now)
    rows.append(("sweep: write entries + postings", time.perf_counter() - t))
    t = time.perf_counter()
    with db.unit_of_work() as s:
        closed = close_period(s, org_id, settings, now, period, [])
    rows.append(("close: figures and top-ups", time.perf_counter() - t))
    t = time.perf_counter()
    with db.unit_of_work() as s:
        close_period(s, org_id, settings, now, period, [])
    rows.append(("close again (adds nothing)", time.perf_counter() - t))
    topped = sum(1 for _, w in closed.workers if w.top_up_minor)
    print(f"\n{args.labels:,} labels, {args.workers:,} workers ({topped:,} topped up), {url}")
    print(f"{'step':40} {'seconds':>8}")
    for label, seconds in rows:
        print(f"{label:40} {seconds:8.2f}")
    print(f"{'total':40} {sum(s for _, s in rows):8.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS, whole process): {peak:.0f} MB")
    db.dispose()


if __name__ == "__main__":
    main()
