"""Setting up the queue benchmark (``bench/queue.py``): an organization with 16 workers, a
consensus project with gold, and n pending tasks that are exactly what the API creates.

The project, its batch, its evaluation tasks and one *template* task are made through a real
server over HTTP, as a customer would. The other n - 1 tasks are copies of the template's row
inserted straight into the database in large batches (a million creates over HTTP would take
an hour), with their tags and their ``task_counts`` as the create path writes them;
``check_loaded`` proves a loaded row equals the API's in every column but its identity.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import psycopg

import httpx

#: Workers pull through this project; its params ask for fixed redundancy k = 3 (Scale's form).
PROJECT = "queue-bench"
BATCH = "queue-bench-batch"
CATEGORIES = ["positive", "negative", "neutral"]
CONSENSUS_ATTEMPTS = 3
PIPELINE = {"pipeline": "consensus_task", "consensus_attempts": CONSENSUS_ATTEMPTS}
WORKER_PASSWORD = "queue bench worker passphrase"
#: Columns a loaded task takes from itself rather than from the template.
IDENTITY = ("seq", "task_id", "unique_id", "created_at", "updated_at")
CHUNK = 20_000


@dataclass
class Setup:
    api_key: str
    org_id: str
    emails: list[str]
    template_task_id: str
    gold_ids: list[str] = field(default_factory=list)
    #: How the gold rate was asked for, and whether the server took it (see ``ask_gold_rate``).
    gold_rate_note: str = ""


def fresh_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    engine.dispose()


def create_accounts(db_url: str, workers: int) -> tuple[str, str, list[str]]:
    """Migrate, then an organization (its live key) and ``workers`` annotators."""
    from steelyard.accounts import security
    from steelyard.accounts import service as accounts
    from steelyard.db.engine import Database
    from steelyard.db.migrate import upgrade

    db = Database(db_url)
    upgrade(db.engine)
    run = uuid.uuid4().hex[:8]
    emails = [f"worker-{i:02d}-{run}@queue-bench.example.com" for i in range(workers)]
    # Slow on purpose (it is a password hash): before the write transaction, and once for all.
    password_hash = security.hash_password(WORKER_PASSWORD)
    with db.unit_of_work() as s:
        created = accounts.create_organization(s, f"queue-bench-{run}")
        for email in emails:
            accounts.create_user(
                s,
                org_id=created.org.id,
                email=email,
                password_hash=password_hash,
                role="annotator",
            )
        org_id, key = created.org.id, created.live_api_key
    db.dispose()
    return org_id, key, emails


def task_body(text: str) -> dict[str, Any]:
    return {
        "project": PROJECT,
        "batch": BATCH,
        "instruction": "Is this review positive, negative or neutral?",
        "attachment": text,
        "attachment_type": "text",
        "categories": CATEGORIES,
        "metadata": {"source": "queue-bench"},
        "tags": ["queue-bench"],
    }


def create_through_api(base: str, setup: Setup, gold_tasks: int, gold_rate: float) -> None:
    """The project (k = 3 in Scale's params), its batch, gold, and the template task, as a
    customer makes them: over HTTP with the live key."""
    with httpx.Client(base_url=base, auth=(setup.api_key, ""), timeout=60) as http:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = http.post(path, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"POST {path}: {r.status_code} {r.text}")
            answer: dict[str, Any] = r.json()
            return answer

        post("/v1/projects", {"type": "categorization", "name": PROJECT, "params": PIPELINE})
        setup.gold_rate_note = ask_gold_rate(http, gold_rate)
        post("/v1/batches", {"project": PROJECT, "name": BATCH})
        for i in range(gold_tasks):
            body = {
                **{k: v for k, v in task_body(f"gold review {i}").items() if k != "tags"},
                "expected_response": {"category": CATEGORIES[i % len(CATEGORIES)]},
            }
            answer = post("/v1/evaluation_tasks/categorization", body)
            setup.gold_ids.append(str(answer.get("id") or answer.get("task_id")))
        template = post("/v1/task/categorization", task_body("Great product, would buy again."))
        setup.template_task_id = template["task_id"]
        post(f"/v1/batches/{BATCH}/finalize", {})


def ask_gold_rate(http: httpx.Client, rate: float) -> str:
    """Set the project's ``gold_rate`` (a project param, ``projects.workflow_settings``): the
    workers' ``next`` then serves the evaluation tasks as that share of each worker's items,
    hidden among the live ones. Refused or not echoed back is an error: the bench must not
    report gold figures for a project that serves none."""
    r = http.post(f"/v1/projects/{PROJECT}/setParams", json={"gold_rate": rate})
    if r.status_code != 200:
        raise RuntimeError(f"setParams gold_rate={rate}: {r.status_code} {r.text}")
    echoed = r.json().get("params", {}).get("gold_rate")
    if echoed != rate:
        raise RuntimeError(f"setParams gold_rate={rate} answered params.gold_rate={echoed}")
    return f"params gold_rate={rate} set"


def bulk_load(db_url: str, org_id: str, template_task_id: str, n: int) -> float:
    """Copy the template task until the organization has ``n`` pending tasks; seconds taken."""
    from sqlalchemy import Table, insert, literal, select
    from sqlalchemy.orm import make_transient

    from steelyard.db.base import new_id
    from steelyard.db.engine import Database
    from steelyard.tasks import service as tasks
    from steelyard.tasks.models import Task, TaskTag

    db = Database(db_url)
    table: Table = Task.__table__  # type: ignore[assignment]
    with db.unit_of_work(write=False) as s:
        template = s.scalar(select(Task).where(Task.task_id == template_task_id))
        assert template is not None and template.status == "pending"
        s.expunge(template)
    make_transient(template)
    row = {c.key: getattr(template, c.key) for c in Task.__mapper__.column_attrs}
    # Keys are attribute names (``metadata_``); the insert wants column names (``metadata``).
    row = {Task.__mapper__.column_attrs[k].columns[0].name: v for k, v in row.items()}
    row["unique_id"] = None  # several tasks cannot share one
    # Every loaded row is the template's, but for its id and times: the values are put in the
    # database's form once, by the columns' own types (what SQLAlchemy does for each row of an
    # executemany, and most of its cost at a million rows), and the rows go to the driver as
    # plain tuples.
    dialect = db.engine.dialect
    varying = ["task_id", "created_at", "updated_at"]
    fixed = [c.name for c in table.columns if c.name not in (*varying, "seq")]

    def bind(name: str, value: Any) -> Any:
        process = table.c[name].type._cached_bind_processor(dialect)
        return process(value) if process is not None else value

    fixed_values = tuple(bind(name, row[name]) for name in fixed)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    columns = [*varying, *fixed]
    names = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
    insert_sql = f"INSERT INTO tasks ({names}) VALUES ({', '.join([mark] * len(columns))})"
    copy_sql = f"COPY tasks ({names}) FROM STDIN"
    tags = list(template.tags)
    t0 = time.perf_counter()
    done = 1  # the template
    while done < n:
        m = min(CHUNK, n - done)
        now = bind("created_at", datetime.now(UTC))
        rows = [(new_id(), now, now, *fixed_values) for _ in range(m)]
        with db.unit_of_work() as s:
            last = s.scalar(select(Task.seq).order_by(Task.seq.desc()).limit(1))
            if dialect.name == "postgresql":
                # COPY: several times faster than any INSERT there.
                raw = cast("psycopg.Connection[Any]", s.connection().connection.dbapi_connection)
                with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    for values in rows:
                        copy.write_row(values)
            else:
                s.connection().exec_driver_sql(insert_sql, rows)
            for tag in tags:
                s.execute(
                    insert(TaskTag).from_select(
                        ["task_seq", "tag", "org_id"],
                        select(Task.seq, literal(tag), Task.org_id).where(
                            Task.org_id == org_id, Task.seq > last
                        ),
                    )
                )
            tasks.count_task(s, template, +m)
        done += m
        print(
            f"\r  loaded {done:,}/{n:,} tasks ({time.perf_counter() - t0:.0f} s)",
            end="",
            file=sys.stderr,
        )
    print(file=sys.stderr)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    db.dispose()
    # Written out now: otherwise the kernel flushes the load during the measurement.
    os.sync()
    return time.perf_counter() - t0


def check_loaded(db_url: str, org_id: str, template_task_id: str, n: int) -> None:
    """A loaded task equals the API's task in every column but its identity, every loaded task
    has its tags, and the counters the list totals use agree with the rows."""
    from sqlalchemy import func, select

    from steelyard.db.engine import Database
    from steelyard.tasks.models import Task, TaskCount, TaskTag

    db = Database(db_url)
    try:
        with db.unit_of_work(write=False) as s:
            api_row = s.execute(select(Task).where(Task.task_id == template_task_id)).scalar_one()
            others = (Task.org_id == org_id) & (Task.task_id != template_task_id)
            # The first and the last loaded rows: every chunk is built alike.
            for order in (Task.seq, Task.seq.desc()):
                loaded = s.scalar(select(Task).where(others).order_by(order).limit(1))
                if n == 1:
                    break
                assert loaded is not None
                for attr in Task.__mapper__.column_attrs:
                    if attr.key in IDENTITY:
                        continue
                    a, b = getattr(api_row, attr.key), getattr(loaded, attr.key)
                    assert a == b, f"loaded task differs in {attr.key}: {b!r} != API's {a!r}"
            by_status = dict(
                s.execute(
                    select(Task.status, func.count())
                    .where(Task.org_id == org_id)
                    .group_by(Task.status)
                ).all()
            )
            assert by_status == {"pending": n}, by_status
            counted = s.scalar(
                select(func.sum(TaskCount.n)).where(
                    TaskCount.org_id == org_id, TaskCount.status == "pending"
                )
            )
            assert counted == n, f"task_counts says {counted} pending, the table has {n}"
            tagged = s.scalar(
                select(func.count()).select_from(TaskTag).where(TaskTag.org_id == org_id)
            )
            assert tagged == n * len(api_row.tags), f"{tagged} tag rows for {n} tasks"
    finally:
        db.dispose()
