"""Background WAL checkpoints for SQLite.

By default SQLite checkpoints inside whichever commit takes the write-ahead log past 1,000
pages, and that commit pays for copying them into the database file. Under a steady stream of
task creates (about a dozen pages each: the row and its indexes) that was every ~80th request,
a few milliseconds late each time: it was the whole of the p99 (14.6 ms → 11.9 ms without it).

A serving process turns the automatic checkpoints off on its own connections and runs this
thread instead. Each round is a PASSIVE checkpoint, which waits for no reader or writer (SQLite
copies what it can and carries on) and spends its time in SQLite's C code with the GIL released.

Passive rounds alone never let the log start over while writers keep appending (it grew past
700 MB under a minute of creates). So once the log holds ``restart_frames`` pages (64 MB of
4 KB pages), the thread catches up without blocking anyone, then takes the write lock for one
last round over the few pages written meanwhile, which completes the checkpoint; the next writer
then starts the log from its beginning. That round stalls writers for about 3 ms, once every
two seconds or so under full load; a lower threshold restarts more often, each stall the same.

Other processes (the CLI, ``steelyard jobs``) keep SQLite's default, and SQLite lets both kinds
share one database.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import Any

log = logging.getLogger("steelyard.db")


class Checkpointer:
    def __init__(
        self,
        database_file: str,
        write_lock: AbstractContextManager[Any],
        *,
        interval: float = 0.25,
        restart_frames: int = 16384,
    ) -> None:
        self.database_file = database_file
        self.write_lock = write_lock
        self.interval = interval
        self.restart_frames = restart_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.completed = 0  # checkpoints that moved the whole log (for tests)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="steelyard-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one last round, so the log does not outlive the process."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        # Its own connection, outside the pool: a checkpoint never waits for a request's.
        conn = sqlite3.connect(self.database_file, timeout=30, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                self.round(conn)
            self.round(conn, finish=True)
        except Exception:
            log.exception("WAL checkpoint thread failed; SQLite's log now grows until restart")
        finally:
            conn.close()

    def round(self, conn: sqlite3.Connection, *, finish: bool = False) -> None:
        frames, copied = self._passive(conn)
        if frames < self.restart_frames and not finish:
            return
        for _ in range(8):
            if frames - copied <= 256:
                break
            frames, copied = self._passive(conn)
        with self.write_lock:
            frames, copied = self._passive(conn)
        if frames == copied:
            self.completed += 1

    def _passive(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """(frames in the log, frames copied into the database); (0, 0) if it could not run."""
        try:
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            # Busy or locked: the next round tries again; nothing is lost by waiting.
            log.debug("WAL checkpoint skipped", exc_info=True)
            return 0, 0
        return max(frames, 0), max(copied, 0)
