"""Where the server's time went during a queue benchmark window, from py-spy's collapsed
stacks (``bench/queue.py --py-spy PATH``): samples by route part (next, submit's read,
submit's write, sign-in checks, background threads) and, inside each, by layer (the database
driver, SQLAlchemy, the web stack, Steelyard's own code)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

#: Route parts, first match wins (a frame's text is ``function (file:line)``).
PARTS = [
    # On PostgreSQL the units of work run in pool threads: their stacks start at the function.
    ("next", ("next_task (steelyard/api/native/router.py", "_lease_next (steelyard/api/native")),
    ("submit: check (read)", ("_check (steelyard/api/native/router.py",)),
    ("submit: write", ("submit (steelyard/api/native/router.py",)),
    ("session check per request", ("authenticate (", "Authenticator.", "CounterWatcher.")),
    ("WAL checkpointer", ("Checkpointer.",)),
    ("job runner", ("JobRunner.",)),
    ("rate limiter sync", ("SharedLimiter.",)),
]
LAYERS = [
    # The event loop's own line is where it waits in epoll (not CPU, though sampled).
    ("event loop (waiting for sockets)", ("asyncio/runners.py",)),
    # On PostgreSQL this includes waiting for the server's answer (and for its row locks).
    ("database driver", ("sqlite3", "do_execute", "do_commit", "do_rollback", "psycopg")),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("web stack", ("uvicorn/", "starlette/", "fastapi/", "anyio/", "httptools")),
    ("Steelyard", ("steelyard/",)),
    ("threads waiting", ("threading.py", "queue.py")),
]


def part_of(frames: list[str]) -> str:
    for name, markers in PARTS:
        if any(m in f for f in frames for m in markers):
            return name
    return "other (HTTP, middleware, event loop)"


def layer_of(frame: str) -> str:
    for name, markers in LAYERS:
        if any(m in frame for m in markers):
            return name
    return "other"


def breakdown(path: Path) -> list[tuple[str, int, dict[str, int]]]:
    """(part, samples, {layer: samples}) with the most sampled part first."""
    parts: Counter[str] = Counter()
    layers: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        part = part_of(frames)
        parts[part] += int(count)
        layers[part][layer_of(frames[-1])] += int(count)
    return [(p, n, dict(layers[p].most_common())) for p, n in parts.most_common()]


def print_breakdown(path: Path, title: str) -> None:
    rows = breakdown(path)
    total = sum(n for _, n, _ in rows) or 1
    print(f"\nServer samples, {title} (py-spy, 50 Hz, {path}):\n")
    print("| part | share | where (samples) |")
    print("|---|---|---|")
    for part, n, layers in rows:
        where = ", ".join(f"{k} {v}" for k, v in layers.items())
        print(f"| {part} | {100 * n / total:.0f} % | {where} |")
