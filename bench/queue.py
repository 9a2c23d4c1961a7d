#!/usr/bin/env python3
"""The labeling queue under 16 concurrent workers, at 10^4 and 10^6 pending tasks.

For each database and size: an organization with 16 annotators, a consensus project (Scale's
params ``{"pipeline": "consensus_task", "consensus_attempts": 3}``, gold rate 0.1 with
evaluation tasks made through ``/v1/evaluation_tasks``), and n pending tasks (one created
through the API, the rest copies of its row loaded straight into the database; see
``queue_setup``). Then a real ``steelyard serve`` process is started and 16 workers, each
signed in with its own session, loop ``POST /api/work/next`` -> ``POST /api/work/{id}/submit``
for ``--seconds`` over HTTP (a worker stops early when ``next`` answers 204: nothing left).
The project's tasks and the server's process are set up afresh for each database and size;
the PostgreSQL database's public schema is dropped first (``--postgres-url``).

The load generator is asyncio coroutines on raw keep-alive connections (``api.RawHTTP``) in
one process (``--generator-processes``) at nice 10, so that it takes little of the two cores
from the server; its own CPU seconds are printed, with the server's and the machine's.

Printed per database and size: submitted labels/s, next and submit p50/p95/p99 (ms), double
hand-outs (``queue_analysis``), the redundancy k the server applied (labels per completed
task), gold served, and the targets beside them; then Label Studio's figures for comparison.
On PostgreSQL also what the server's connections ran and waited on (``pg_stat_activity``);
with ``--py-spy PATH`` where the server's samples went (``queue_profile``).

Usage: python bench/queue.py [--database sqlite|postgres|both] [--sizes 10000,1000000]
       [--seconds 60] [--postgres-url URL] [--workers 16] [--cache DIR] [--py-spy PATH]
       [--json FILE]
Targets (2 cores): zero double hand-outs; >= 300 labels/s on SQLite; next p99 < 25 ms at 10^6
tasks; figures flat from 10^4 to 10^6.
"""

from __future__ import annotations

# This file is named queue.py, as the issue asks, and Python puts its folder first on the
# path: the standard library's ``queue`` (which asyncio, multiprocessing and httpx import)
# would be this file. So the folder goes to the end of the path, before anything is imported.
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH] + [str(BENCH)]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

from queue_analysis import client_doubles, gold_leases, not_customer_tasks, stored  # noqa: E402
from queue_cache import cache_key, restore, save  # noqa: E402
from queue_load import Measured, generate  # noqa: E402
from queue_profile import print_breakdown  # noqa: E402
from queue_setup import (  # noqa: E402
    CONSENSUS_ATTEMPTS,
    Setup,
    bulk_load,
    check_loaded,
    create_accounts,
    create_through_api,
    fresh_postgres,
)

from api import free_port, pct, start_server  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/steelyard_queuebench"
LABEL_STUDIO = "../shared/research/perf-label-studio.md"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def run_one(db_url: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One database and size: accounts in the database, then one server process that takes
    the project, gold and template task over HTTP, idles through the bulk load, and is
    measured."""
    data_dir = Path(tempfile.mkdtemp(prefix="steelyard-queue-"))
    try:
        if db_url.startswith("postgresql"):
            fresh_postgres(db_url)
        else:
            db_url = f"sqlite:///{data_dir / 'steelyard.db'}"
        env = {
            **os.environ,
            "STEELYARD_DATA_DIR": str(data_dir),
            "STEELYARD_DATABASE_URL": db_url,
        }
        if args.workers > 16:
            # Every worker signs in from this one address: past the default 20 a minute the
            # server would refuse some (the limits otherwise stay as a server runs them).
            env["STEELYARD_LOGIN_RATE_LIMIT_PER_ADDRESS"] = str(2 * args.workers)
        sqlite = not db_url.startswith("postgresql")
        key = cache_key(n, args.workers, args.gold_tasks, args.gold_rate)
        setup = restore(args.cache, key, data_dir) if args.cache and sqlite else None
        fresh = setup is None
        if setup is None:
            org_id, api_key, emails = create_accounts(db_url, args.workers)
            setup = Setup(api_key=api_key, org_id=org_id, emails=emails, template_task_id="")
        else:
            print(f"  {n:,} tasks from the cache {args.cache / key}", file=sys.stderr)
        port = free_port()
        proc = start_server(env, port, args.server_workers)
        spies: list[subprocess.Popen[bytes]] = []

        def go() -> None:
            spy = profile(proc.pid, n, db_url, args)
            if spy is not None:
                spies.append(spy)

        try:
            if fresh:
                base = f"http://127.0.0.1:{port}"
                create_through_api(base, setup, args.gold_tasks, args.gold_rate)
                took = bulk_load(db_url, setup.org_id, setup.template_task_id, n)
                print(f"  loaded {n:,} tasks in {took:.0f} s", file=sys.stderr)
            check_loaded(db_url, setup.org_id, setup.template_task_id, n)
            if fresh and args.cache and sqlite:
                save(args.cache, key, data_dir, setup)
            measured = generate(
                port,
                setup.emails,
                seconds=args.seconds,
                processes=args.generator_processes,
                server_pid=proc.pid,
                db_url=db_url,
                on_go=go,
            )
        finally:
            for spy in spies:
                spy.wait()
            stop(proc)
        result = summarize(db_url, n, setup, measured, args)
        if spies:
            result["profile"] = str(profile_path(n, db_url, args))
        return result
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def profile_path(n: int, db_url: str, args: argparse.Namespace) -> Path:
    name = "postgres" if db_url.startswith("postgresql") else "sqlite"
    return Path(args.py_spy_dir) / f"queue-{name}-{n}.txt"


def profile(
    pid: int, n: int, db_url: str, args: argparse.Namespace
) -> subprocess.Popen[bytes] | None:
    """Sample the server's stacks through the window with py-spy (``--py-spy``): collapsed
    stacks, one file per database and size, to see where next and submit spend their time."""
    if not args.py_spy:
        return None
    out = profile_path(n, db_url, args)
    cmd = [args.py_spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
    cmd += ["--duration", str(int(args.seconds) + 1), "--rate", "50", "--nonblocking"]
    print(f"  py-spy samples to {out}", file=sys.stderr)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(
    db_url: str, n: int, setup: Setup, m: Measured, args: argparse.Namespace
) -> dict[str, Any]:
    k_asked = CONSENSUS_ATTEMPTS
    db = stored(db_url, setup.org_id, k_asked)
    k = db.effective_k or k_asked
    seen = client_doubles(m.nexts, m.submits, k, m.end)
    ok_next = [b - a for _, a, b, status, *_ in m.nexts if status == 200]
    ok_submit = [b - a for _, a, b, status, _ in m.submits if status == 200]
    statuses: dict[str, int] = {}
    for name, records in (("next", m.nexts), ("submit", m.submits)):
        for r in records:
            if r[3] != 200:
                statuses[f"{name} {r[3]}"] = statuses.get(f"{name} {r[3]}", 0) + 1
    served = [r[5] for r in m.nexts if r[3] == 200 and r[5] is not None]
    # Gold is shown under a task id of its own per worker (it must not give itself away), so
    # what was served as gold is what is no customer task; the server's counts say the same.
    hidden = not_customer_tasks(db_url, setup.org_id, set(served))
    return {
        "database": "PostgreSQL" if db_url.startswith("postgresql") else "SQLite",
        "tasks": n,
        "seconds": m.end - m.start,
        "submitted": len(ok_submit),
        "labels_per_s": len(ok_submit) / (m.end - m.start),
        "next": [pct(ok_next, q) for q in (50, 95, 99)],
        "drift": drift(m),
        "submit": [pct(ok_submit, q) for q in (50, 95, 99)],
        "doubles_seen": [seen.same_worker, seen.over_k],
        "doubles_stored": [db.doubles.same_worker, db.doubles.over_k, db.over_labeled],
        "k_asked": k_asked,
        "k_effective": db.effective_k,
        "labels_per_completed": db.labels_per_completed,
        "labels_per_pending": db.labels_per_pending,
        "gold_served": hidden,
        "gold_counted": gold_leases(db_url, setup.org_id),
        "served": len(served),
        "gold_note": setup.gold_rate_note,
        "other_answers": statuses,
        "generator_cpu": m.generator_cpu,
        "server_cpu": m.server_cpu,
        "postgres_cpu": m.postgres_cpu,
        "machine_busy": m.machine_busy,
        "postgres_waits": [[*key, n] for key, n in m.postgres_waits.most_common(12)],
        "postgres_wait_samples": sum(m.postgres_waits.values()),
        "workers": len(setup.emails),
        "generator_processes": args.generator_processes,
    }


def drift(m: Measured) -> list[tuple[float, float]]:
    """Labels/s, next p99 and submit p99 in the first and the last fifth of the window: a
    queue that slows as it is worked (dead index entries, growing tables) shows here."""
    fifth = (m.end - m.start) / 5
    spans = [(m.start, m.start + fifth), (m.end - fifth, m.end)]

    def within(records: Any, span: tuple[float, float]) -> list[float]:
        return [r[2] - r[1] for r in records if r[3] == 200 and span[0] <= r[1] < span[1]]

    nexts = [within(m.nexts, span) for span in spans]
    submits = [within(m.submits, span) for span in spans]
    return [
        (len(submits[0]) / fifth, len(submits[1]) / fifth),
        (pct(nexts[0], 99), pct(nexts[1], 99)),
        (pct(submits[0], 99), pct(submits[1], 99)),
    ]


def ms(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"\n## Steelyard work queue: {results[0]['workers']} workers, next -> submit over HTTP "
        f"({os.cpu_count()} cores shared by server, database and load generator)\n"
    )
    print(
        "| database | pending tasks | labels/s (target >= 300 on SQLite) "
        "| next p50 / p95 / p99 ms (target p99 < 25 at 10^6) | submit p50 / p95 / p99 ms "
        "| double hand-outs (target 0) | k applied (asked 3) | gold served (asked 10 %) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        doubles = sum(r["doubles_seen"]) + sum(r["doubles_stored"])
        k = r["k_effective"] if r["k_effective"] is not None else "none completed"
        share = 100 * r["gold_served"] / max(r["served"], 1)
        gold = f"{r['gold_served']} of {r['served']} ({share:.1f} %)"
        counted = r.get("gold_counted")
        if counted:
            gold += f"; server counts {counted[0]} gold of {counted[0] + counted[1]} leases"
        print(
            f"| {r['database']} | {r['tasks']:,} | {r['labels_per_s']:.0f} | {ms(r['next'])} "
            f"| {ms(r['submit'])} | {doubles} | {k} | {gold} |"
        )
    print(
        "\n| database | pending tasks | window s | labels | non-200 answers "
        "| generator CPU s | server CPU s (ms per label) | postgres backends CPU s | machine busy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        other = ", ".join(f"{n} x {s}" for s, n in sorted(r["other_answers"].items())) or "none"
        pg = f"{r['postgres_cpu']:.1f}" if r["postgres_cpu"] is not None else "-"
        per_label = 1000 * r["server_cpu"] / max(r["submitted"], 1)
        print(
            f"| {r['database']} | {r['tasks']:,} | {r['seconds']:.1f} | {r['submitted']:,} "
            f"| {other} | {r['generator_cpu']:.1f} ({r['generator_processes']} proc., nice 10) "
            f"| {r['server_cpu']:.1f} ({per_label:.1f}) | {pg} | {100 * r['machine_busy']:.0f} % |"
        )
    print("\nDouble hand-outs, by kind (client-side: same worker twice, more than k open at once;")
    print("stored: same worker twice, more than k open at once, more labels than k):")
    for r in results:
        print(
            f"- {r['database']} {r['tasks']:,}: seen {r['doubles_seen']}, "
            f"stored {r['doubles_stored']}; labels per completed task "
            f"{r['labels_per_completed']}, per pending task with labels "
            f"{r['labels_per_pending']}; gold: {r['gold_note']}"
        )
    print("\nOver the window (first fifth -> last fifth): labels/s, next p99 ms, submit p99 ms:")
    for r in results:
        (l0, l1), (n0, n1), (s0, s1) = r["drift"]
        print(
            f"- {r['database']} {r['tasks']:,}: {l0:.0f} -> {l1:.0f} labels/s, "
            f"next p99 {n0:.1f} -> {n1:.1f}, submit p99 {s0:.1f} -> {s1:.1f}"
        )
    verdicts(results)
    label_studio()
    for r in results:
        if r["postgres_waits"]:
            print_waits(r)
    for r in results:
        if r.get("profile") and Path(r["profile"]).exists():
            print_breakdown(Path(r["profile"]), f"{r['database']}, {r['tasks']:,} tasks")


def print_waits(r: dict[str, Any]) -> None:
    total = r["postgres_wait_samples"]
    print(
        f"\nPostgreSQL, {r['tasks']:,} tasks: what the server's busy connections were doing "
        "(pg_stat_activity every 50 ms, most frequent first):\n"
    )
    print("| state | waiting on | statement | share |")
    print("|---|---|---|---|")
    for state, wait, query, n in r["postgres_waits"]:
        query = query.replace("|", "\\|")
        print(f"| {state} | {wait} | `{query}` | {100 * n / total:.0f} % |")


def verdicts(results: list[dict[str, Any]]) -> None:
    print("\nTargets:")
    doubles = sum(sum(r["doubles_seen"]) + sum(r["doubles_stored"]) for r in results)
    print(f"- zero double hand-outs: {'met' if doubles == 0 else f'MISSED ({doubles})'}")
    for r in results:
        if r["database"] == "SQLite":
            ok = r["labels_per_s"] >= 300
            print(
                f"- >= 300 labels/s on SQLite at {r['tasks']:,}: "
                f"{'met' if ok else 'MISSED'} ({r['labels_per_s']:.0f})"
            )
        if r["tasks"] >= 1_000_000:
            ok = r["next"][2] < 25
            print(
                f"- next p99 < 25 ms at {r['tasks']:,} ({r['database']}): "
                f"{'met' if ok else 'MISSED'} ({r['next'][2]:.1f} ms)"
            )
    by_db: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_db.setdefault(r["database"], []).append(r)
    for name, rs in by_db.items():
        if len(rs) > 1:
            small, large = min(rs, key=lambda r: r["tasks"]), max(rs, key=lambda r: r["tasks"])
            print(
                f"- flat from {small['tasks']:,} to {large['tasks']:,} ({name}): labels/s x"
                f"{large['labels_per_s'] / small['labels_per_s']:.2f}, next p99 x"
                f"{large['next'][2] / small['next'][2]:.2f}, submit p99 x"
                f"{large['submit'][2] / small['submit'][2]:.2f}"
            )


def label_studio() -> None:
    print(
        f"\nLabel Studio 1.23.2 for comparison (community edition, SQLite, runserver, same "
        f"2-core machine; from {LABEL_STUDIO}, run of 2026-11-27, one run):\n"
    )
    print("| figure | Label Studio |")
    print("|---|---|")
    for name, value in [
        ("annotators", "8 concurrent (8 users, 8 threads, 30 s), overlap 1"),
        ("throughput", "96 annotations in 30.6 s = 3.14 annotations/s"),
        ("next under 8 clients p50 / p95 / p99 ms", "1,304 / 3,978 / 8,520"),
        ("submit under 8 clients p50 / p95 / p99 ms", "664 / 1,440 / 2,220"),
        ("double hand-outs", "13 of 80 tasks served (16 %), some to 3 annotators"),
        ("next, 1 annotator, 100k tasks p50 / p95 / p99 ms", "240 / 312 / 447"),
        ("submit, 1 client p50 / p95 / p99 ms", "115 / 312 / 328"),
    ]:
        print(f"| {name} | {value} |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=16, help="concurrent labelers")
    parser.add_argument("--generator-processes", type=int, default=1)
    parser.add_argument("--server-workers", type=int, default=1, help="steelyard serve --workers")
    parser.add_argument("--gold-tasks", type=int, default=200)
    parser.add_argument("--gold-rate", type=float, default=0.1)
    parser.add_argument("--py-spy", default=None, help="path of py-spy: sample the server")
    parser.add_argument("--py-spy-dir", default=tempfile.gettempdir())
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep loaded SQLite databases here and reuse them (keyed by schema and size)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    urls = {"sqlite": ["sqlite"], "postgres": [args.postgres_url]}
    urls["both"] = urls["sqlite"] + urls["postgres"]
    results = []
    for url in urls[args.database]:
        for n in [int(s) for s in args.sizes.split(",")]:
            print(f"{url.split('@')[-1]}: {n:,} tasks", file=sys.stderr)
            r = run_one(url, n, args)
            results.append(r)
            print(  # as it comes: a long run cut short still tells what it measured
                f"  {r['labels_per_s']:.0f} labels/s, next {ms(r['next'])} ms, submit "
                f"{ms(r['submit'])} ms, double hand-outs {r['doubles_seen']} "
                f"{r['doubles_stored']}, k {r['k_effective']}",
                file=sys.stderr,
            )
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
