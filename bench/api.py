#!/usr/bin/env python3
"""API latency at 10^4 and 10^6 tasks in one organization (SQLite by default).

For each size the task table is filled to that size directly in SQL (as fast as the database
takes rows; the HTTP create path is measured separately below), then a real `steelyard serve`
process is started and measured over HTTP:

- create: POST /v1/task/categorization from 8 concurrent clients (Basic auth, live key)
- list:   GET /v1/tasks with project + status filters, following next_token; with batch; with
          a tag one task in a hundred carries; with a time window (its total is counted on the
          first page, then carried in next_token: both are shown)
- work:   POST /api/work/next then POST /api/work/{id}/submit, one worker after another

Usage: python bench/api.py [--sizes 10000,1000000] [--database-url URL] [--creates 2000]
Prints a table of p50/p99 in milliseconds. Targets (SQLite, 2 cores): list p99 < 20 ms at 10^6,
create p99 < 15 ms, and no figure that grows with the table size.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ["positive", "negative", "neutral"]
WORKER_PASSWORD = "bench worker passphrase"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


def bulk_fill(url: str, n: int) -> dict[str, str]:
    """Create an org, project, batch, worker and n pending tasks straight in the database."""
    from sqlalchemy import insert, literal, select, update

    from steelyard.accounts import security
    from steelyard.accounts import service as accounts
    from steelyard.accounts.schemas import Actor
    from steelyard.db.base import new_id
    from steelyard.db.engine import Database
    from steelyard.db.migrate import upgrade
    from steelyard.projects import service as projects
    from steelyard.tasks.models import Task, TaskCount, TaskTag

    db = Database(url)
    upgrade(db.engine)
    now = datetime.now(UTC)
    worker_hash = security.hash_password(WORKER_PASSWORD)  # slow: before the transaction
    with db.unit_of_work() as s:
        created = accounts.create_organization(s, f"bench-{new_id()}")
        org_id = created.org.id
        accounts.create_user(
            s,
            org_id=org_id,
            email=f"w-{org_id}@bench.local",
            password_hash=worker_hash,
            role="annotator",
        )
        actor = Actor(org_id=org_id, is_test=False, kind="api_key", role="admin")
        project = projects.create_project(
            s, actor, {"name": "bench", "type": "categorization"}, now
        )
        batch = projects.create_batch(s, actor, {"project": "bench", "name": "bench-batch"}, now)
        keys = {
            "org_id": org_id,
            "live": created.live_api_key,
            "project_id": project.id,
            "batch_id": batch.id,
            "worker": f"w-{org_id}@bench.local",
        }
    chunk = 20_000
    params = {
        "attachment": "Great product, would buy again.",
        "attachment_type": "text",
        "categories": CATEGORIES,
    }
    done = 0
    t0 = time.perf_counter()
    while done < n:
        m = min(chunk, n - done)
        rows = [
            {
                "task_id": new_id(),
                "org_id": org_id,
                "is_test": False,
                "project_id": project.id,
                "batch_id": batch.id if (done + i) % 10 == 0 else None,
                "type": "categorization",
                "status": "pending" if (done + i) % 3 else "completed",
                "params": params,
                "metadata_": {},
                "tags": [],
                "customer_review_comments": [],
                "prior_responses": [],
                "audits": [],
                "priority": 0,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(m)
        ]
        with db.unit_of_work() as s:
            s.execute(insert(Task), rows)
        done += m
        print(
            f"\r  filled {done:,}/{n:,} tasks ({time.perf_counter() - t0:.0f} s)",
            end="",
            file=sys.stderr,
        )
    print(file=sys.stderr)
    with db.unit_of_work() as s:
        # One task in a hundred carries the tag "rare" (the "list tag" row).
        rare = (Task.org_id == org_id) & (Task.seq % 100 == 0)
        s.execute(update(Task).where(rare).values(tags=["rare"]))
        s.execute(
            insert(TaskTag).from_select(
                ["task_seq", "tag", "org_id"],
                select(Task.seq, literal("rare"), Task.org_id).where(rare),
            )
        )
    with db.unit_of_work() as s:
        in_batch = (n + 9) // 10
        completed = (n + 2) // 3
        completed_in_batch = len(range(0, n, 30))
        for batch_id, status, count in [
            ("", "pending", (n - in_batch) - (completed - completed_in_batch)),
            ("", "completed", completed - completed_in_batch),
            (batch.id, "pending", in_batch - completed_in_batch),
            (batch.id, "completed", completed_in_batch),
        ]:
            s.add(
                TaskCount(
                    org_id=org_id,
                    is_test=False,
                    project_id=project.id,
                    batch_id=batch_id,
                    type="categorization",
                    status=status,
                    n=count,
                )
            )
    if url.startswith("postgresql"):
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
    # Write the fill out now: otherwise the kernel flushes hundreds of MB of it during the
    # measurements, and the server's first checkpoint fsync waits for all of it.
    os.sync()
    return keys


def start_server(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "steelyard.cli.main", "serve", "--port", str(port)]
    cmd += ["--log-level", "warning", "--workers", str(workers)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(
        "server did not start: " + (proc.stderr.read().decode() if proc.stderr else "")
    )


class RawHTTP:
    """A minimal HTTP/1.1 keep-alive connection over asyncio streams.

    The load generator shares the machine's two cores with the server. httpx spends about half
    a millisecond of CPU per request (and eight client threads contend for one GIL), which the
    measured latency then includes; this costs a few tens of microseconds.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": host, **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawHTTP:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


def measure_create(base: str, key: str, count: int, clients: int) -> list[float]:
    """POST /v1/task/categorization from ``clients`` connections, each waiting for its answer."""
    host, port = base.removeprefix("http://").split(":")
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    per_client = count // clients
    run = random.random()

    async def client(c: int) -> list[float]:
        local = []
        async with RawHTTP(host, int(port), {"Authorization": auth}) as http:
            for i in range(per_client):
                body = {
                    "project": "bench",
                    "attachment": f"review {c}-{i}",
                    "attachment_type": "text",
                    "categories": CATEGORIES,
                    "unique_id": f"bench-{run}-{c}-{i}",
                }
                t = time.perf_counter()
                status, answer = await http.post(
                    "/v1/task/categorization", json.dumps(body).encode()
                )
                local.append(time.perf_counter() - t)
                assert status == 200, answer
        return local[5:]  # the first requests warm the connection

    async def all_clients() -> list[float]:
        results = await asyncio.gather(*(client(c) for c in range(clients)))
        return [x for r in results for x in r]

    return asyncio.run(all_clients())


def measure_list(
    base: str, key: str, pages: int, query: dict[str, str], *, warmup: int = 5
) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base, auth=(key, ""), timeout=30) as http:
        token = None
        for i in range(pages + warmup):
            params = {**query, "limit": "100"}
            if token:
                params["next_token"] = token
            t = time.perf_counter()
            r = http.get("/v1/tasks", params=params)
            dt = time.perf_counter() - t
            assert r.status_code == 200, r.text
            body = r.json()
            token = body["next_token"]
            if i >= warmup:
                latencies.append(dt)
            if not body["has_more"]:
                token = None
    return latencies


def measure_work(base: str, email: str, rounds: int) -> tuple[list[float], list[float]]:
    nexts, submits = [], []
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post(
            "/api/auth/login", json={"email": email, "password": WORKER_PASSWORD}
        ).json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        for i in range(rounds + 3):
            t = time.perf_counter()
            r = http.post("/api/work/next", params={"project": "bench"}, headers=headers)
            dn = time.perf_counter() - t
            assert r.status_code == 200, r.text
            assignment = r.json()["assignment_id"]
            t = time.perf_counter()
            r = http.post(
                f"/api/work/{assignment}/submit",
                headers=headers,
                json={"response": {"category": "positive"}},
            )
            ds = time.perf_counter() - t
            assert r.status_code == 200, r.text
            if i >= 3:
                nexts.append(dn)
                submits.append(ds)
    return nexts, submits


def run_size(
    n: int, url: str | None, creates: int, data_dir: Path, workers: int = 1
) -> list[tuple[str, float, float]]:
    db_url = url or f"sqlite:///{data_dir / 'steelyard.db'}"
    print(f"size {n:,}: filling {db_url.split('@')[-1]}", file=sys.stderr)
    keys = bulk_fill(db_url, n)
    env = {**os.environ, "STEELYARD_DATA_DIR": str(data_dir), "STEELYARD_DATABASE_URL": db_url}
    port = free_port()
    proc = start_server(env, port, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        rows = []
        lat = measure_create(base, keys["live"], creates // 4, clients=1)
        rows.append(("create (1 client)", pct(lat, 50), pct(lat, 99)))
        lat = measure_create(base, keys["live"], creates, clients=8)
        rows.append(("create (8 clients)", pct(lat, 50), pct(lat, 99)))
        lat = measure_list(base, keys["live"], 200, {"project": "bench", "status": "pending"})
        rows.append(("list project+status", pct(lat, 50), pct(lat, 99)))
        lat = measure_list(base, keys["live"], 200, {"batch": "bench-batch"})
        rows.append(("list batch", pct(lat, 50), pct(lat, 99)))
        lat = measure_list(base, keys["live"], 50, {"project": "bench", "tags": "rare"})
        rows.append(("list tag (1 task in 100)", pct(lat, 50), pct(lat, 99)))
        # Counted row by row once per listing: the first page pays, the rest carry the total.
        window = {"project": "bench", "start_time": "2000-01-01T00:00:00Z"}
        first = [t for _ in range(5) for t in measure_list(base, keys["live"], 1, window, warmup=0)]
        lat = measure_list(base, keys["live"], 200, window)
        rows.append(("list time window, 1st page", pct(first, 50), pct(first, 99)))
        rows.append(("list time window, next pages", pct(lat, 50), pct(lat, 99)))
        nexts, submits = measure_work(base, keys["worker"], 300)
        rows.append(("work next", pct(nexts, 50), pct(nexts, 99)))
        rows.append(("work submit", pct(submits, 50), pct(submits, 99)))
        return rows
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file per size"
    )
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1, help="steelyard serve --workers")
    args = parser.parse_args()
    results: dict[int, list[tuple[str, float, float]]] = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        data_dir = Path(tempfile.mkdtemp(prefix="steelyard-bench-"))
        try:
            if args.database_url and args.database_url.startswith("postgresql"):
                from sqlalchemy import create_engine

                eng = create_engine(args.database_url)
                with eng.begin() as conn:
                    conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                eng.dispose()
            results[n] = run_size(n, args.database_url, args.creates, data_dir, args.workers)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    backend = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"
    sizes = list(results)
    print(
        f"\nSteelyard API latency ({backend}, ms; {os.cpu_count()} cores, "
        f"{args.workers} server process(es), load generator on the same machine)\n"
    )
    header = "| operation | " + " | ".join(f"{n:,} p50 | {n:,} p99" for n in sizes) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(sizes)))
    for i, (name, _, _) in enumerate(results[sizes[0]]):
        cells = " | ".join(f"{results[n][i][1]:.1f} | {results[n][i][2]:.1f}" for n in sizes)
        print(f"| {name} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
