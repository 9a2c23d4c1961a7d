"""SQLite writers in different processes queue on the write lock and are handed it at once."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

from steelyard.db.engine import WriteLock


def _hold(path: str, ready: mp.Event, seconds: float) -> None:  # type: ignore[type-arg]
    lock = WriteLock(path)
    with lock:
        ready.set()
        time.sleep(seconds)
    lock.close()


def _holder(path: str, seconds: float) -> mp.process.BaseProcess:
    """Another process that holds the lock on ``path`` for ``seconds`` (it holds it on return)."""
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, seconds))
    holder.start()
    assert ready.wait(30)
    return holder


def test_other_process_waits_then_gets_the_lock_promptly(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    holder = _holder(path, 0.5)
    lock = WriteLock(path)
    start = time.monotonic()
    with lock:
        waited = time.monotonic() - start
    holder.join(10)
    lock.close()
    # It waited for the holder, and not much longer (no sleep-polling).
    assert 0.3 < waited < 1.5


def test_threads_share_one_process_lock(tmp_path: Path) -> None:
    import threading

    lock = WriteLock(str(tmp_path / "y.db"))
    inside = 0
    peak = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, peak
        for _ in range(50):
            with lock:
                with guard:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.0005)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lock.close()
    assert peak == 1


def test_try_acquire_fails_while_another_thread_holds_it(tmp_path: Path) -> None:
    import threading

    lock = WriteLock(str(tmp_path / "z.db"))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    assert lock.acquire(blocking=False) is False
    release.set()
    t.join()
    assert lock.acquire(blocking=False) is True
    lock.release()
    lock.close()


def test_try_acquire_fails_while_another_process_holds_it(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    holder = _holder(path, 1.0)
    lock = WriteLock(path)
    try:
        assert lock.acquire(blocking=False) is False
        # A refused try leaves nothing held: this thread can still wait its turn.
        holder.join(10)
        assert lock.acquire(blocking=False) is True
        lock.release()
    finally:
        lock.close()
