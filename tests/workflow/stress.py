"""What the threaded stress tests share: run the workers beside their helper threads (the fake
clock with the reaper, the invariant monitor) until they are done or the time budget is out."""

from __future__ import annotations

import threading
import time


def run_to_the_end(
    helpers: list[threading.Thread],
    workers: list[threading.Thread],
    stop: threading.Event,
    budget: float = 600.0,
) -> float:
    """Start everything, wait for the workers (at most ``budget`` seconds in all), then stop
    the helpers; returns the seconds it took."""
    started = time.perf_counter()
    for t in helpers + workers:
        t.start()
    deadline = started + budget
    for t in workers:
        t.join(timeout=max(0.0, deadline - time.perf_counter()))
    stop.set()
    for t in helpers + workers:
        t.join(timeout=30)
    return time.perf_counter() - started
