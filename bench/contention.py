#!/usr/bin/env python3
"""Does one client's slow request stall everyone else's writes?

A real ``steelyard serve`` process (SQLite) is measured over HTTP: task creates from 4 clients,
p50/p95/p99 in milliseconds, while each of these runs alongside on other connections:

- idle:          nothing else;
- wrong logins:  8 connections sending wrong passwords for a real worker as fast as they get
                 answers (rate limits off, so that every attempt really checks a password; and
                 once more with the default limits on, as a server would run);
- dns blackhole: 4 connections creating batches whose ``callback`` host never answers DNS (the
                 server process resolves names under ``.dns-blackhole.test`` by sleeping 10 s,
                 as a resolver that never answers does; every other name resolves normally).

Usage: python bench/contention.py [--creates 800] [--seconds-per-phase]
Target: create latency in every phase equal to idle within noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.queues
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import RawHTTP, free_port, pct, start_server

PASSWORD = "contention-bench-passphrase"
BLACKHOLE = """
import socket, time
_real = socket.getaddrinfo
def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".dns-blackhole.test"):
        time.sleep(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    return _real(host, *args, **kwargs)
socket.getaddrinfo = _getaddrinfo
"""


def setup(db_url: str) -> dict[str, str]:
    from datetime import UTC, datetime

    from steelyard.accounts import security
    from steelyard.accounts import service as accounts
    from steelyard.accounts.schemas import Actor
    from steelyard.db.engine import Database
    from steelyard.db.migrate import upgrade
    from steelyard.projects import service as projects

    db = Database(db_url)
    upgrade(db.engine)
    email = f"worker-{uuid.uuid4().hex[:8]}@bench.example.com"
    with db.unit_of_work() as s:
        created = accounts.create_organization(s, f"contention-{uuid.uuid4().hex[:8]}")
        actor = Actor(org_id=created.org.id, is_test=False, kind="api_key", role="admin")
        projects.create_project(
            s, actor, {"name": "bench", "type": "categorization"}, datetime.now(UTC)
        )
        org_id = created.org.id
        key = created.live_api_key
    password_hash = security.hash_password(PASSWORD)  # slow: before the write transaction
    with db.unit_of_work() as s:
        accounts.create_user(
            s, org_id=org_id, email=email, password_hash=password_hash, role="annotator"
        )
    db.dispose()
    return {"key": key, "email": email}


def creates(base: str, key: str, count: int, clients: int = 4) -> list[float]:
    import base64

    host, port = base.removeprefix("http://").split(":")
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    run = uuid.uuid4().hex[:6]

    async def client(c: int) -> list[float]:
        out = []
        async with RawHTTP(host, int(port), {"Authorization": auth}) as http:
            for i in range(count // clients):
                body = {
                    "project": "bench",
                    "attachment": f"text {c}-{i}",
                    "attachment_type": "text",
                    "categories": ["a", "b"],
                    "unique_id": f"c-{run}-{c}-{i}",
                }
                t = time.perf_counter()
                status, answer = await http.post(
                    "/v1/task/categorization", json.dumps(body).encode()
                )
                out.append(time.perf_counter() - t)
                assert status == 200, answer
                await asyncio.sleep(0.005)  # a steady load, not a saturating one
        return out[3:]

    async def main() -> list[float]:
        parts = await asyncio.gather(*(client(c) for c in range(clients)))
        return [x for p in parts for x in p]

    return asyncio.run(main())


class Background:
    """Processes that send one kind of request in a loop until stopped; counts the answers.

    Each sender is its own process at the lowest CPU priority, with one keep-alive connection:
    the senders stand for clients on other machines, so they must neither hold this process's
    GIL (where the measured creates run) nor take the cores from the server. What the server
    spends answering them is what is measured.
    """

    def __init__(self, n: int, send: Callable[[httpx.Client], int], base: str) -> None:
        context = multiprocessing.get_context("fork")
        self.stop = context.Event()
        self.results: multiprocessing.queues.Queue[dict[int, int]] = context.Queue()
        self.statuses: dict[int, int] = {}
        self.processes = [
            context.Process(target=self._run, args=(send, base), daemon=True) for _ in range(n)
        ]

    def _run(self, send: Callable[[httpx.Client], int], base: str) -> None:
        os.nice(19)
        statuses: dict[int, int] = {}
        with httpx.Client(base_url=base, timeout=60) as http:
            while not self.stop.is_set():
                try:
                    status = send(http)
                except httpx.HTTPError:
                    status = 0
                statuses[status] = statuses.get(status, 0) + 1
        self.results.put(statuses)

    def __enter__(self) -> Background:
        for p in self.processes:
            p.start()
        time.sleep(1.0)  # let the flood build up before measuring
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for _ in self.processes:
            for status, n in self.results.get(timeout=90).items():
                self.statuses[status] = self.statuses.get(status, 0) + n
        for p in self.processes:
            p.join(timeout=30)


def run(args: argparse.Namespace, limits_on: bool) -> list[tuple[str, list[float], str]]:
    data_dir = Path(tempfile.mkdtemp(prefix="steelyard-contention-"))
    (data_dir / "site").mkdir()
    (data_dir / "site" / "sitecustomize.py").write_text(BLACKHOLE)
    db_url = f"sqlite:///{data_dir / 'steelyard.db'}"
    ids = setup(db_url)
    env = {
        **os.environ,
        "STEELYARD_DATA_DIR": str(data_dir),
        "STEELYARD_DATABASE_URL": db_url,
        "PYTHONPATH": str(data_dir / "site"),
    }
    if not limits_on:
        env.update(
            STEELYARD_RATE_LIMIT_PER_KEY="0",
            STEELYARD_RATE_LIMIT_PER_ADDRESS="0",
            STEELYARD_LOGIN_RATE_LIMIT_PER_ADDRESS="0",
            STEELYARD_LOGIN_FAILURES_BEFORE_THROTTLE="1000000000",
        )
    port = free_port()
    proc = start_server(env, port)
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, list[float], str]] = []
    try:
        creates(base, ids["key"], 200)  # warm up
        rows.append(("idle", creates(base, ids["key"], args.creates), ""))

        def wrong_login(http: httpx.Client) -> int:
            body = {"email": ids["email"], "password": "not-the-password-at-all"}
            return http.post("/api/auth/login", json=body).status_code

        with Background(8, wrong_login, base) as flood:
            lat = creates(base, ids["key"], args.creates)
        rows.append(("wrong-password logins x8", lat, _summary(flood.statuses)))

        def blackhole_batch(http: httpx.Client) -> int:
            body = {
                "project": "bench",
                "name": f"b-{uuid.uuid4().hex[:10]}",
                "callback": f"https://{uuid.uuid4().hex[:8]}.dns-blackhole.test/cb",
            }
            return http.post("/v1/batches", json=body, auth=(ids["key"], "")).status_code

        with Background(4, blackhole_batch, base) as holes:
            lat = creates(base, ids["key"], args.creates)
        rows.append(("batch creates, DNS never answers x4", lat, _summary(holes.statuses)))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def _summary(statuses: dict[int, int]) -> str:
    return ", ".join(f"{n} x {code or 'err'}" for code, n in sorted(statuses.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creates", type=int, default=800)
    parser.add_argument("--limits", choices=["off", "on", "both"], default="both")
    args = parser.parse_args()
    print(
        "\nTask create latency (ms, 4 clients, SQLite, 1 server process, "
        f"{os.cpu_count()} cores shared with the load)\n"
    )
    print("| rate limits | alongside | p50 | p95 | p99 | background answers |")
    print("|---|---|---|---|---|---|")
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.limits]
    for on in modes:
        for name, lat, note in run(args, on):
            label = "default" if on else "off"
            print(
                f"| {label} | {name} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} | "
                f"{pct(lat, 99):.1f} | {note} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
