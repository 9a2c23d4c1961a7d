"""The worker-model refit check (``workflow.worker_models.due``) against the count it replaced.

Builds a SQLite file with N categorical tasks x 3 labels (raw inserts, foreign keys off; labels a
day old, so the check's window is empty as between bursts), runs ``ANALYZE``, then times the old
query (every label of every categorical project, joined to its task, grouped by project) and
``due`` twice (the first call pays statement compilation).

Run: ``PYTHONPATH=src .venv/bin/python -P bench/refresh_check.py 1000000`` (-P: this folder has a
``queue.py`` that would shadow the standard library's).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.tasks.models import Task
from steelyard.workflow import worker_models
from steelyard.workflow.models import Label

FIXED = {"org_id": "o" * 24, "project_id": "p" * 24, "type": "categorization", "is_test": 0}


def build(path: str, n: int) -> None:
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    con = sqlite3.connect(path)
    cols = {r[1]: r for r in con.execute("PRAGMA table_info(tasks)")}
    names = sorted({c for c, r in cols.items() if r[3] and r[4] is None and c != "seq"} | {*FIXED})

    def value(column: str, i: int) -> Any:
        if column == "task_id":
            return f"{i:024x}"
        if column == "status":
            return "completed"
        if column in FIXED:
            return FIXED[column]
        return "x" if cols[column][2].upper().startswith(("VARCHAR", "TEXT", "CHAR")) else 0

    marks = ",".join("?" * len(names))
    con.executemany(
        f"INSERT INTO tasks ({','.join(names)}) VALUES ({marks})",
        ([value(c, i) for c in names] for i in range(n)),
    )
    old = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f")

    def labels() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            for j in range(3):
                k = i * 3 + j
                yield f"{k:024x}", "o" * 24, i + 1, f"a{k:023x}", f"u{j:023x}", old

    con.executemany(
        "INSERT INTO labels (id, org_id, task_seq, assignment_id, user_id, response, created_at,"
        ' superseded) VALUES (?, ?, ?, ?, ?, \'{"category": "cat"}\', ?, 0)',
        labels(),
    )
    con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    path = os.path.join(tempfile.mkdtemp(), "refresh.db")
    build(path, n)
    db = Database(f"sqlite:///{path}")
    now = datetime.now(UTC)
    with db.unit_of_work(write=False) as s:
        t0 = time.perf_counter()
        s.execute(
            select(Task.org_id, Task.project_id, func.count(Label.id))
            .join(Label, Label.task_seq == Task.seq)
            .where(Task.project_id.is_not(None), Task.type.in_(worker_models.categorical_types()))
            .group_by(Task.org_id, Task.project_id)
        ).all()
        t1 = time.perf_counter()
        worker_models.due(s, now)
        t2 = time.perf_counter()
        worker_models.due(s, now)
        t3 = time.perf_counter()
    print(
        f"{n} tasks, {3 * n} labels: old count {1000 * (t1 - t0):.1f} ms; "
        f"due {1000 * (t2 - t1):.1f} ms (first), {1000 * (t3 - t2):.1f} ms (second)"
    )


if __name__ == "__main__":
    main()
