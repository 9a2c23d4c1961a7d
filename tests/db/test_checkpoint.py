"""Background WAL checkpoints: the log is copied into the database off the request path, and it
starts over once it is long, instead of growing without end."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from steelyard.db.checkpoint import Checkpointer
from steelyard.db.engine import Database, WriteLock


def _wal_pages(path: Path) -> int:
    wal = Path(str(path) + "-wal")
    return (wal.stat().st_size // 4096) if wal.exists() else 0


def _write_rows(conn: sqlite3.Connection, n: int) -> None:
    for i in range(n):
        conn.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(3000).hex(),))
        if i % 50 == 0:
            conn.commit()
    conn.commit()


def test_a_long_log_starts_over_while_writers_keep_writing(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    writer = sqlite3.connect(path, isolation_level="DEFERRED")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    writer.commit()
    lock = WriteLock(str(path))
    checkpointer = Checkpointer(str(path), lock, interval=0.005, restart_frames=300)
    checkpointer.start()
    written = 0
    try:
        # Back-to-back transactions: a passive round never finds the log fully copied, so only
        # the round under the write lock can let it start over.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline or checkpointer.completed < 2:
            with lock:
                for _ in range(10):
                    writer.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(3000).hex(),))
                writer.commit()
            written += 10
            # A request handler yields between transactions; without it this loop can starve the
            # checkpoint thread of the GIL on a loaded machine and the test measures the scheduler.
            time.sleep(0.0002)
            assert time.monotonic() < deadline + 20, "the log never started over"
    finally:
        checkpointer.stop()
        lock.close()
    assert checkpointer.completed >= 2
    # Each row is about two pages; the log (frames since it last started over) holds far fewer
    # than were written.
    _busy, log_frames, _copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert written * 2 > 3 * log_frames
    assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == written
    writer.close()


def _checkpoint_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "steelyard-checkpoint"}


def test_a_serving_database_hands_checkpoints_to_its_thread(tmp_path: Path) -> None:
    # Other databases in this process (the session's live servers) run checkpoint threads of
    # their own: this database's is one that appears with its first write and ends with it.
    others = _checkpoint_threads()
    path = tmp_path / "s.db"
    db = Database(f"sqlite:///{path}", background_checkpoints=True)
    assert _checkpoint_threads() <= others  # built, not yet written: no thread
    try:
        with db.unit_of_work() as s:
            assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
            s.execute(text("CREATE TABLE t (v TEXT)"))
        with db.unit_of_work() as s:
            for _ in range(300):
                s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 3000})
        assert _wal_pages(path) > 200  # no commit copied the log itself
        started = _checkpoint_threads() - others
        assert started
    finally:
        db.dispose()
    # Exactly one of the threads that appeared was this database's: dispose stopped it.
    assert len({t for t in started if not t.is_alive()}) == 1
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 300
    check.close()


def test_other_databases_keep_sqlites_own_checkpoints(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        with db.unit_of_work() as s:
            assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
    finally:
        db.dispose()
