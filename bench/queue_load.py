"""The queue benchmark's load generator: workers as asyncio coroutines on raw keep-alive
connections (``api.RawHTTP``, tens of microseconds per request against httpx's half a
millisecond) in one or a few processes at nice 10, so that the server keeps the cores.

Each worker signs in with its own password (``POST /api/auth/login``), then loops
``next`` -> ``submit`` until the time is up or ``next`` answers 204 (nothing left for it).
What each request got is recorded with ``perf_counter`` times (one monotonic clock for every
process on the machine), and the CPU the generator, the server and the database spent in
the window is measured from ``/proc``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from queue_analysis import NextRecord, SubmitRecord
from queue_setup import CATEGORIES, PROJECT, WORKER_PASSWORD

from api import RawHTTP

NICE = 10
HOST = "127.0.0.1"


@dataclass
class Measured:
    nexts: list[NextRecord]
    submits: list[SubmitRecord]
    start: float
    end: float
    generator_cpu: float
    server_cpu: float
    postgres_cpu: float | None
    #: Share of the machine's CPU time that was busy in the window (all processes).
    machine_busy: float
    #: PostgreSQL only: samples of what the server's connections were doing.
    postgres_waits: Counter[tuple[str, str, str]]


async def sign_in(port: int, email: str) -> str:
    async with RawHTTP(HOST, port, {}) as http:
        body = json.dumps({"email": email, "password": WORKER_PASSWORD}).encode()
        status, answer = await http.post("/api/auth/login", body)
    if status != 200:
        raise RuntimeError(f"sign-in of {email}: {status} {answer!r}")
    return str(json.loads(answer)["token"])


async def worker(
    index: int, port: int, token: str, deadline: float
) -> tuple[list[NextRecord], list[SubmitRecord], float]:
    nexts: list[NextRecord] = []
    submits: list[SubmitRecord] = []
    rng = random.Random(index)
    next_path = f"/api/work/next?project={PROJECT}"
    clock = time.perf_counter
    async with RawHTTP(HOST, port, {"Authorization": f"Bearer {token}"}) as http:
        while clock() < deadline:
            t0 = clock()
            try:
                status, body = await http.post(next_path, b"")
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                nexts.append((index, t0, clock(), 0, None, None))
                break
            t1 = clock()
            if status != 200:
                nexts.append((index, t0, t1, status, None, None))
                if status == 204:
                    break  # nothing left that this worker may take
                await asyncio.sleep(0.05)
                continue
            offer = json.loads(body)
            assignment = str(offer["assignment_id"])
            nexts.append((index, t0, t1, status, assignment, str(offer["task"]["task_id"])))
            answer = json.dumps({"response": {"category": rng.choice(CATEGORIES)}}).encode()
            t0 = clock()
            try:
                status, _ = await http.post(f"/api/work/{assignment}/submit", answer)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                submits.append((index, t0, clock(), 0, assignment))
                break
            submits.append((index, t0, clock(), status, assignment))
    return nexts, submits, clock()


def _process(conn: Connection, port: int, emails: list[tuple[int, str]]) -> None:
    """One generator process: sign in, say ready, wait for the go, run, send the records."""
    os.nice(NICE)

    async def sign_all() -> list[str]:
        return list(await asyncio.gather(*(sign_in(port, e) for _, e in emails)))

    tokens = asyncio.run(sign_all())
    conn.send("ready")
    deadline = conn.recv()
    cpu0 = os.times()

    async def run_all() -> list[tuple[list[NextRecord], list[SubmitRecord], float]]:
        return list(
            await asyncio.gather(
                *(worker(i, port, t, deadline) for (i, _), t in zip(emails, tokens, strict=True))
            )
        )

    results = asyncio.run(run_all())
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    nexts = [r for n, _, _ in results for r in n]
    submits = [r for _, s, _ in results for r in s]
    conn.send((nexts, submits, max(e for *_, e in results), cpu))
    conn.close()


def generate(
    port: int,
    emails: list[str],
    *,
    seconds: float,
    processes: int,
    server_pid: int,
    db_url: str,
    on_go: Callable[[], object] | None = None,
) -> Measured:
    """Run the workers for ``seconds`` once all have signed in; ``on_go`` is called just
    before they start (to begin sampling the server, say)."""
    context = multiprocessing.get_context("fork")
    pipes, procs = [], []
    numbered = list(enumerate(emails))
    for p in range(processes):
        ours, theirs = context.Pipe()
        proc = context.Process(target=_process, args=(theirs, port, numbered[p::processes]))
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    t0 = time.perf_counter()
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise RuntimeError("a generator process failed to sign in")
    print(f"  {len(emails)} workers signed in ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    if on_go is not None:
        on_go()
    backends = PostgresBackends(db_url) if db_url.startswith("postgresql") else None
    server0, machine0 = process_tree_cpu(server_pid), machine_ticks()
    pg0 = backends.cpu() if backends else {}
    if backends is not None:
        backends.sample_waits()
    start = time.perf_counter()
    for pipe in pipes:
        pipe.send(start + seconds)
    parts = [pipe.recv() for pipe in pipes]
    server1, machine1 = process_tree_cpu(server_pid), machine_ticks()
    pg_cpu = None
    waits: Counter[tuple[str, str, str]] = Counter()
    if backends is not None:
        pg1 = backends.cpu()
        pg_cpu = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
        backends.close()
        waits = backends.waits
    for proc in procs:
        proc.join(timeout=30)
    busy = 1 - (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1)
    return Measured(
        nexts=[r for n, *_ in parts for r in n],
        submits=[r for _, s, *_ in parts for r in s],
        start=start,
        end=max(e for _, _, e, _ in parts),
        generator_cpu=sum(c for *_, c in parts),
        server_cpu=server1 - server0,
        postgres_cpu=pg_cpu,
        machine_busy=busy,
        postgres_waits=waits,
    )


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def process_tree_cpu(pid: int) -> float:
    """A process and its children (``serve --workers N`` forks them)."""
    total = process_cpu(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                total += process_cpu(int(entry.name))
    return total


def machine_ticks() -> tuple[int, int]:
    """(idle, total) CPU ticks of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values[:8])


class PostgresBackends:
    """CPU of the PostgreSQL backends serving this database (the server's connections).

    The database runs on this machine, so its backends' ``/proc`` entries are readable; only
    the connections to the bench's own database are counted, not other users'.
    """

    def __init__(self, db_url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(db_url)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        #: What the backends were doing, sampled through the window: {(state, wait, query): n}.
        self.waits: Counter[tuple[str, str, str]] = Counter()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def sample_waits(self, every: float = 0.05) -> None:
        """Poll ``pg_stat_activity`` in a thread until ``close``: which statements the
        server's connections were running or waiting in (a lock on a hot row shows here)."""
        sampler = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

        def run() -> None:
            while not self._stop.wait(every):
                rows = sampler.exec_driver_sql(
                    "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'on CPU'), "
                    "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state <> 'idle'"
                ).all()
                for state, wait, query in rows:
                    self.waits[(str(state), str(wait), str(query))] += 1
            sampler.close()

        self._sampler = threading.Thread(target=run, daemon=True)
        self._sampler.start()

    def cpu(self) -> dict[int, float]:
        pids = self.conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).scalars()
        return {int(p): process_cpu(int(p)) for p in pids}

    def close(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self.conn.close()
        self.engine.dispose()
